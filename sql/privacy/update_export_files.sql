-- update_export_files: the campaign_exports rows of export files an erasure rewrote
-- (_rewritten_exports: file, row_count, sha256) get the files' new row counts and hashes.
update campaign_exports
set
    row_count = r.row_count,
    sha256 = r.sha256
from _rewritten_exports as r
where campaign_exports.file = r.file
