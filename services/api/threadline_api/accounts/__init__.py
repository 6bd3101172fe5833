"""Accounts: setup, registration, users, login and sessions (contract 3)."""
