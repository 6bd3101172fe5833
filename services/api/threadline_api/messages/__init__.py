"""Threads and messages: posting, trees, thread lists, edit/delete/restore, chunks, unread (contract 5)."""
