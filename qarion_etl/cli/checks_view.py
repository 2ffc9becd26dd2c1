"""How the command line shows data check results (``[[tasks.checks]]``).

One line per check that warned or failed, then one line counting the checks by status:
``run`` prints them under a task's line, ``qarion-etl check`` under each task's name.
Values come from data: the caller shows every line through ``output.shown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The word each status is shown with.
STATUS_WORDS = {"pass": "passed", "warn": "warned", "fail": "failed"}


def check_line(check: dict[str, Any]) -> str:
    """``WARN check 'name' (type on column): 3 failing rows, e.g. id=3, status='x'``."""
    what = f"{check['type']} on {check['column']}" if check.get("column") else check["type"]
    n = int(check.get("failing") or 0)
    if check["type"] == "row_count":
        found = str(check.get("note") or "")
    else:
        found = f"{n:,} failing row{'s' * (n != 1)}"
        sample = check.get("sample") or []
        if sample:
            first = ", ".join(f"{k}={v!r}" for k, v in sample[0].items())
            found += f", e.g. {first}"
    label = "WARN" if check["status"] == "warn" else "FAIL"
    return f"{label} check '{check['name']}' ({what}): {found}"


def check_summary(checks: Sequence[dict[str, Any]]) -> str:
    """``checks: 5 passed, 1 warned``."""
    counts: dict[str, int] = {}
    for c in checks:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    parts = [f"{counts[s]} {word}" for s, word in STATUS_WORDS.items() if counts.get(s)]
    return "checks: " + ", ".join(parts)


def check_lines(checks: Sequence[dict[str, Any]] | None, *, failed: bool = True) -> list[str]:
    """The lines of one task's checks (``failed=False``: leave out failed ones, which the
    task's error already names)."""
    if not checks:
        return []
    shown = [c for c in checks if c["status"] == "warn" or (failed and c["status"] == "fail")]
    return [*(check_line(c) for c in shown), check_summary(checks)]
