-- Without CRM files in the folder seg-validate checks, stg_crm_customers holds only the
-- customer ids the other files name (assume_known_customers.sql), so none is unknown.
create table if not exists stg_crm_customers (customer_id varchar, arrival_date date)
