"""Conversations, membership and invites (contract 4)."""
