"""``runs list`` and ``runs show``."""

from __future__ import annotations

import typer

app = typer.Typer(help="Past runs and their task instances.", no_args_is_help=True, rich_markup_mode=None)
