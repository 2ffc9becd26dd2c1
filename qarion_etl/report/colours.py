"""The colour of each task status, shared by every picture (SVG, mermaid, dot, the pages)."""

from __future__ import annotations

#: Fill and stroke by task (or try) status, on a light background.
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
#: The same on a dark background (``prefers-color-scheme: dark``).
DARK_COLOURS = {
    "success": ("#1d3b24", "#66bb6a"),
    "failed": ("#4d1f1f", "#ef6461"),
    "skipped": ("#33363a", "#a0a4a8"),
    "kept": ("#1a3352", "#64b5f6"),
    "not_run": ("#1f2226", "#8a8f94"),
    "interrupted": ("#4a3214", "#ffa94d"),
    "running": ("#463d12", "#f2c94c"),
    "retrying": ("#463d12", "#f2c94c"),
}


def status_css() -> str:
    """CSS giving each ``.s-<status>`` its colours as ``--bg`` and ``--fg``, light and dark."""

    def rules(colours: dict[str, tuple[str, str]]) -> str:
        return "".join(f".s-{s}{{--bg:{bg};--fg:{fg}}}" for s, (bg, fg) in colours.items())

    return f"{rules(COLOURS)}\n@media (prefers-color-scheme: dark){{{rules(DARK_COLOURS)}}}\n"
