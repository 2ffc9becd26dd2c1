"""Small output helpers for the CLI: stderr messages and stdout data, without rich.

rich is imported only where a command draws with it (``console.py``'s live run view,
``xcom list``'s table), so commands that print a line or a JSON document start fast.

Messages carry data (a driver's words, a file's name, a value): every one is shown with
its control characters escaped (``escaping.visible``), so nothing from data reaches the
terminal as an escape sequence, nor a GitHub Actions runner as a workflow command.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from qarion_etl.escaping import json_visible, visible


def use_color(stream: Any = sys.stderr) -> bool:
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def _style(text: str, code: str, stream: Any) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if use_color(stream) else text


def shown(text: str) -> str:
    """``text`` as a terminal or a CI log may show it (see ``escaping.visible``)."""
    return visible(text, workflow_commands=os.environ.get("GITHUB_ACTIONS") == "true")


def info(message: str) -> None:
    """A human message on stderr."""
    print(shown(message), file=sys.stderr)


def success(message: str) -> None:
    print(_style(shown(message), "32", sys.stderr), file=sys.stderr)


def error(message: str) -> None:
    print(_style("Error:", "1;31", sys.stderr) + " " + shown(message), file=sys.stderr)


def warn(message: str) -> None:
    print(_style("Warning:", "33", sys.stderr) + " " + shown(message), file=sys.stderr)


#: Whether this command has written its JSON document to stdout (one per command).
_document = {"written": False}


def emit_json(data: Any) -> None:
    """One machine-readable document on stdout."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write(json_visible(text) + "\n")
    _document["written"] = True


def json_written() -> bool:
    """Whether ``emit_json`` wrote the command's document already."""
    return _document["written"]


def begin_command() -> None:
    """A new command starts: it has written no document yet."""
    _document["written"] = False


def emit(text: str) -> None:
    """Data on stdout: as it is in a pipe, with control characters shown on a terminal."""
    if sys.stdout.isatty():
        text = shown(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
