"""`klimapuls progress`: where every target stands (database or offline files)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the `klimapuls` app."""
