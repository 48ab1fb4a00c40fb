"""`klimapuls simulate`: stream a seeded, realistic, synthetic event mix."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the `klimapuls` app."""
