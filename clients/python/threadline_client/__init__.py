"""Threadline's typed async client (see README "Use it")."""
