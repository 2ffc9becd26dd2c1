"""The colour of each task status, shared by every picture (SVG, mermaid, dot, the pages)."""

from __future__ import annotations

#: Fill and stroke by task (or try) status.
COLOURS = {
    "success": ("#d9f2dc", "#2e7d32"),
    "failed": ("#fbd5d5", "#c62828"),
    "skipped": ("#ececec", "#757575"),
    "kept": ("#dbe9f9", "#1565c0"),
    "not_run": ("#ffffff", "#9e9e9e"),
    "interrupted": ("#ffe6c7", "#ef6c00"),
    "running": ("#fff6bf", "#b38f00"),
    "retrying": ("#fff6bf", "#b38f00"),
}
