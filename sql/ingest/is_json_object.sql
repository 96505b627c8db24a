-- is_json_object(line): whether a line of a JSON-lines file is one JSON object. A valid JSON
-- text is an object exactly when its first character after JSON whitespace is a brace; that
-- test is much cheaper than asking json_type, which parses the line a second time.
create or replace temp macro is_json_object(line) as coalesce(
    json_valid(line) and starts_with(ltrim(line, ' ' || chr(9) || chr(10) || chr(13)), '{'),
    false
)
