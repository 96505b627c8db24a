"""Personal data: the encrypted vault (per-customer data keys, crypto-shredding) and erasure
on request."""
