-- Remove the lines just quarantined (_load_rejects) from _lines, so no later step reads them.
delete from _lines
where line_number in (select line_number from _load_rejects)
