"""``run`` and ``render`` (written with the runner)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the run commands; filled in by the runner."""
