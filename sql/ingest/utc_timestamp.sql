-- utc_timestamp(value): the one rule that reads a delivered timestamp, for every source, in the
-- loaders and in every staging SQL file. Returns the UTC wall time as TIMESTAMP, or NULL when
-- the value is not a timestamp (staging then quarantines the row as invalid_timestamp).
--   '2026-03-10T21:08:21Z', '...21.123Z'       -> 2026-03-10 21:08:21(.123)  (Z is UTC)
--   '2026-03-10 21:08:21+05:30', '...+0530'    -> 2026-03-10 15:38:21        (offset applied)
--   '2026-03-10T21:08:21-03:00'                -> 2026-03-11 00:08:21
--   '2026-03-10 21:08:21' (no offset)          -> 2026-03-10 21:08:21        (taken as UTC)
--   'garbage', '', NULL                        -> NULL
-- Surrounding spaces are ignored; fractional seconds are kept to the microsecond. A value
-- without offset is read in the session time zone, which every warehouse connection sets to
-- UTC (Warehouse.connection). A typed TIMESTAMP WITH TIME ZONE (Parquet) passes unchanged
-- apart from the conversion to UTC wall time.
-- Spark: to_utc_timestamp(try_to_timestamp(value), 'UTC') with spark.sql.session.timeZone=UTC.
create or replace temp macro utc_timestamp(value) as
    timezone('UTC', try_cast(value as timestamptz))
