"""The ``threadline`` command-line tool (typer + rich) on :class:`~threadline_client.ThreadlineClient`."""

from threadline_client.cli.app import app, main

__all__ = ["app", "main"]
