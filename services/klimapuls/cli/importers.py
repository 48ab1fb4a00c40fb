"""`klimapuls import`: load the CSV files municipalities actually hold."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the `klimapuls` app."""
