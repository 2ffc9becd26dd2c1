"""Small output helpers for the CLI: stderr messages and stdout data, without rich.

rich is imported only where a command draws with it (``console.py``'s live run view,
``xcom list``'s table), so commands that print a line or a JSON document start fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def use_color(stream: Any = sys.stderr) -> bool:
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def _style(text: str, code: str, stream: Any) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if use_color(stream) else text


def info(message: str) -> None:
    """A human message on stderr."""
    print(message, file=sys.stderr)


def success(message: str) -> None:
    print(_style(message, "32", sys.stderr), file=sys.stderr)


def error(message: str) -> None:
    print(_style("Error:", "1;31", sys.stderr) + " " + message, file=sys.stderr)


def warn(message: str) -> None:
    print(_style("Warning:", "33", sys.stderr) + " " + message, file=sys.stderr)


def emit_json(data: Any) -> None:
    """One machine-readable document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
