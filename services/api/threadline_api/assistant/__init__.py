"""Assistant worker."""
