-- Remove a table's quarantine rows of the partitions [$start_date, $end_date] before that table
-- writes them again.
delete from quarantine
where table_name = $table_name
    and arrival_date between $start_date and $end_date
