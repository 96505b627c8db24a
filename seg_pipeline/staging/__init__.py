"""stg_* assets: one SQL file under sql/staging/ per asset."""
