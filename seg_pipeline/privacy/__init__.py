"""Personal data: the encrypted vault, its per-customer data keys and crypto-shredding."""
