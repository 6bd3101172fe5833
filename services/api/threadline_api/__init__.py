"""Threadline."""
