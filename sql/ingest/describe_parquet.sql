-- The columns and types of a Parquet landing file.
describe select * from read_parquet($path)
