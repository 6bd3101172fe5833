"""Rate-limit profiles and route assignments: the admin API (contract 8.8)."""
