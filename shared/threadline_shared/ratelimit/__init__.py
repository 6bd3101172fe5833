"""HTTP rate limits (contract 8): route patterns, profiles and assignments, and the per-request check."""
