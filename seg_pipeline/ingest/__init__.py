"""raw_* assets: each day's landing file loaded as delivered into the warehouse."""
