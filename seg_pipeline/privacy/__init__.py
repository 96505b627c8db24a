"""Personal data: erasure on request (and, beside it, the vault of clear values)."""
