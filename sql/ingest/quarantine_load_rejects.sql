-- Quarantine the unreadable lines listed in _load_rejects (line_number, column_name, error_type,
-- error_message, raw_line) with the file they came from. The raw line of a source with personal
-- columns is withheld: a line that cannot be split into fields cannot be masked field by field.
-- An insert by position: the quarantine's columns name the values.
-- noqa: disable=AL03
insert into quarantine
select
    $source,
    $table_name,
    'load',
    $as_of_date::date,
    lower(regexp_replace(error_type, '[^A-Za-z]+', '_', 'g')),
    error_message,
    $source_file,
    line_number,
    column_name,
    case
        when $withhold_raw_line then '(withheld: personal data; see source_file and line_number)'
        else raw_line
    end,
    now()::timestamp
from _load_rejects
