"""Reading TOML files with errors that point at the file and line.

``load_toml`` parses with tomli (TOML 1.1, so multi-line inline tables with comments load)
and turns a syntax error into a ``ConfigError``/``FlowValidationError``-ready message. When
the error sits inside a multi-line inline table with several entries and no commas (the
form some documentation shows, valid in no TOML version), the message shows the same
settings written as a TOML table, which is valid everywhere.

``KeyLocator`` finds the line of a key inside a table or an array-of-tables entry (and
inside a sub-table of one, such as ``[tasks.config]``), so validation errors can name lines
although the parser keeps no positions. ``type_names`` words TOML types for messages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomli

from qarion_etl.filetext import FileTooLarge, read_limited

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_OPEN_INLINE = re.compile(r"^\s*([A-Za-z0-9_.\"-]+)\s*=\s*\{\s*(#.*)?$")
#: A line that assigns a key (``key = …`` or ``"key" = …``); group 1 is the key.
_ASSIGN = re.compile(r'^\s*"?([^"=]*?)"?\s*=')

_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean (true or false)",
    dict: "table",
    list: "list",
}


def type_names(kind: type | tuple[type, ...]) -> str:
    """Human names of TOML types, for messages."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = [_TYPE_NAMES.get(k, k.__name__) for k in kinds]
    return "number" if set(kinds) == {int, float} else " or ".join(names)


class TomlSyntaxError(Exception):
    def __init__(self, message: str, line: int | None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


def load_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse ``path``; returns the document and its text. Raises ``TomlSyntaxError``."""
    try:
        raw = read_limited(path)
    except FileTooLarge as exc:
        raise TomlSyntaxError(f"cannot read file: {exc}", None) from None
    except OSError as exc:
        raise TomlSyntaxError(f"cannot read file: {exc.strerror or exc}", None) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TomlSyntaxError("file is not valid UTF-8", line) from exc
    try:
        return tomli.loads(text), text
    except RecursionError:
        raise TomlSyntaxError("invalid TOML: arrays or tables nested too deeply", None) from None
    except tomli.TOMLDecodeError as exc:
        lineno: int | None = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", str(exc))
        hint = _inline_table_hint(text, lineno) if lineno else None
        raise TomlSyntaxError(f"invalid TOML: {msg}", lineno, hint) from exc


def _table_prefix(lines: list[str], before: int) -> str:
    for i in range(before - 1, -1, -1):
        m = _HEADER.match(lines[i])
        if m:
            return m.group(2).strip()
    return ""


def _inline_table_hint(text: str, err_line: int) -> str | None:
    """If ``err_line`` is inside a multi-line ``name = {`` block, show it as a table."""
    lines = text.splitlines()
    start = None
    for i in range(min(err_line, len(lines)) - 1, -1, -1):
        if _OPEN_INLINE.match(lines[i]):
            start = i
            break
        if _HEADER.match(lines[i]):
            return None
    if start is None:
        return None
    prefix = _table_prefix(lines, start)
    out: list[str] = []
    stack = [f"{prefix}.{_OPEN_INLINE.match(lines[start]).group(1)}".strip(".")]  # type: ignore[union-attr]
    out.append(f"[{stack[-1]}]")
    pending: list[str] = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        m = _OPEN_INLINE.match(line)
        if m:
            stack.append(f"{stack[-1]}.{m.group(1)}")
            pending.append(f"[{stack[-1]}]")
            continue
        if stripped.startswith("}"):
            stack.pop()
            if not stack:
                break
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if pending:
            out.append("")
            out.extend(pending)
            pending = []
        out.append(stripped.rstrip(","))
    if len(out) < 2:
        return None
    body = "\n".join(f"    {o}" for o in out)
    return (
        "an inline table { ... } must fit the TOML rules: entries separated by commas. "
        "Write it as a table instead, which is valid in every TOML version:\n" + body
    )


class KeyLocator:
    """Finds the line numbers of tables and keys in a TOML text (1-based)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str, bool]] = []  # (index, name, is_array)
        for i, line in enumerate(self.lines):
            m = _HEADER.match(line)
            if m:
                self.headers.append((i, m.group(2).strip(), m.group(1) == "[["))
        # Each table's blocks (start, end) in file order, its sub-tables included; built
        # once so that looking up a key is linear in the block, not in the file.
        self._blocks: dict[str, list[tuple[int, int]]] = {}
        open_blocks: list[tuple[str, int]] = []
        for i, name, _is_array in self.headers:
            while open_blocks and not name.startswith(open_blocks[-1][0] + "."):
                done, start = open_blocks.pop()
                self._blocks.setdefault(done, []).append((start, i))
            open_blocks.append((name, i))
        while open_blocks:
            done, start = open_blocks.pop()
            self._blocks.setdefault(done, []).append((start, len(self.lines)))
        for blocks in self._blocks.values():
            blocks.sort()

    def _block(self, table: str | None, index: int | None) -> tuple[int, int]:
        if table is None:
            end = self.headers[0][0] if self.headers else len(self.lines)
            return 0, end
        blocks = self._blocks.get(table, [])
        i = 0 if index is None else index
        if 0 <= i < len(blocks):
            return blocks[i]
        return -1, -1

    def table_line(self, table: str, index: int | None = None) -> int | None:
        start, _ = self._block(table, index)
        return start + 1 if start >= 0 else None

    def key_line(self, key: str, table: str | None = None, index: int | None = None) -> int | None:
        """Line of ``key`` directly in ``table`` (the ``index``-th entry of an array of tables)."""
        start, end = self._block(table, index)
        if start < 0:
            return None
        for i in range(start, end):
            m = _ASSIGN.match(self.lines[i])
            if m is not None and m.group(1) == key:
                return i + 1
        return start + 1 if table is not None else None

    def sub_key_line(self, key: str, table: str, index: int, sub: str) -> int | None:
        """Line of ``key`` in ``[<table>.<sub>]`` of the ``index``-th ``[[<table>]]`` entry."""
        start = self.table_line(table, index)
        if start is None:
            return None
        nxt = self.table_line(table, index + 1)
        end = (nxt - 1) if nxt else len(self.lines)
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\.{re.escape(sub)}\s*\]")
        in_sub = False
        for i in range(start - 1, end):
            text = self.lines[i]
            if header.match(text):
                in_sub = True
                continue
            if in_sub and text.lstrip().startswith("["):
                in_sub = False
            assigned = _ASSIGN.match(text) if in_sub else None
            if assigned is not None and assigned.group(1) == key:
                return i + 1
        return None
