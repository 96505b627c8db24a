-- Remove the vault records of the arrival days [$start_date, $end_date] before they are
-- written again (a re-run of a day replaces its records, never duplicates them).
delete from vault.crm_personal
where arrival_date between $start_date and $end_date
