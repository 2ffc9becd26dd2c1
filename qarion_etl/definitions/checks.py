"""Data checks of a task (``[[tasks.checks]]``): the ``CheckSpec`` model and its parsing.

A check guards what a task publishes: it runs on the staged table before the swap
(``tasks.checks``), and a failing ``error`` check publishes nothing. Every key, type and
value is checked here and reported as a ``Problem`` with the line of the check's table;
``parse_checks`` is called by the flow parser for each task. Whether a ``relationships``
check's ``to = "ref(...)"`` names a known dataset is asked of ``check_refs``, which reads
the other flows of the project.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qarion_etl.definitions.toml import KeyLocator
from qarion_etl.errors import clip, did_you_mean

CHECK_TYPES = ("not_null", "unique", "accepted_values", "relationships", "row_count", "expression")
SEVERITIES = ("error", "warn")
COMPARE_RUNS = ("previous", "current")
COMPARE_KEYS = frozenset({"task", "key", "run"})
COMMON_KEYS = frozenset({"type", "name", "severity"})
#: The keys each check type takes besides ``type``, ``name`` and ``severity``.
TYPE_KEYS: Mapping[str, frozenset[str]] = {
    "not_null": frozenset({"column"}),
    "unique": frozenset({"column"}),
    "accepted_values": frozenset({"column", "values"}),
    "relationships": frozenset({"column", "to", "field"}),
    "row_count": frozenset({"min", "max", "compare_to", "within_percent"}),
    "expression": frozenset({"sql"}),
}
ALL_KEYS = frozenset().union(COMMON_KEYS, *TYPE_KEYS.values())
_REF = re.compile(
    r"""^\s*ref\(\s*(['"])([A-Za-z0-9_-]+)\1\s*(?:,\s*(['"])([A-Za-z0-9_]+)\3\s*)?\)\s*$"""
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

#: Reports one problem of a check: ``(message, key or None)``.
Report = Callable[[str, "str | None"], None]


@dataclass(frozen=True, slots=True)
class CompareTo:
    """``compare_to = {task = "load", key = "rows_loaded", run = "previous"}``."""

    task: str
    key: str
    run: str = "previous"


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One ``[[tasks.checks]]`` table of a task."""

    type: str
    name: str
    severity: str = "error"
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    #: ``relationships``: the flow named in ``ref('flow', 'dataset')`` (``None``: one-arg ref).
    to_flow: str | None = None
    to_dataset: str | None = None
    field: str | None = None
    min: int | None = None
    max: int | None = None
    compare_to: CompareTo | None = None
    within_percent: float | None = None
    sql: str | None = None
    line: int | None = None

    @property
    def column(self) -> str | None:
        """The checked column (the columns joined with ``,`` for a ``unique`` on several)."""
        return ", ".join(self.columns) if self.columns else None


def parse_ref(text: str) -> tuple[str | None, str] | None:
    """``ref('dataset')`` -> ``(None, 'dataset')``; ``ref('flow', 'dataset')`` -> both; else ``None``."""
    m = _REF.match(text)
    if m is None:
        return None
    if m.group(4) is None:
        return None, m.group(2)
    return m.group(2), m.group(4)


def check_blocks(loc: KeyLocator, task_index: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` line indexes of each ``[[tasks.checks]]`` of task ``task_index``."""
    start = loc.table_line("tasks", task_index)
    if start is None:
        return []
    nxt = loc.table_line("tasks", task_index + 1)
    end = (nxt - 1) if nxt else len(loc.lines)
    heads = [i for i, name, is_array in loc.headers if is_array and name == "tasks.checks"]
    mine = [i for i in heads if start - 1 < i < end]
    blocks = []
    for i in mine:
        later = [h for h, _, _ in loc.headers if i < h < end]
        blocks.append((i, later[0] if later else end))
    return blocks


def _key_line(loc: KeyLocator, block: tuple[int, int] | None, key: str) -> int | None:
    if block is None:
        return None
    for i in range(block[0], block[1]):
        text = loc.lines[i].lstrip()
        if re.match(rf"""["']?{re.escape(key)}["']?\s*=""", text):
            return i + 1
    return block[0] + 1


def parse_checks(
    raw: Any,
    *,
    loc: KeyLocator,
    task_index: int,
    task_line: int | None,
    problem: Callable[[str, int | None], None],
    writes_target: bool,
    known_columns: Collection[str] = (),
) -> tuple[CheckSpec, ...]:
    """The checks of one task's ``checks`` value (a list of tables); problems go to ``problem``."""
    blocks = check_blocks(loc, task_index)
    key_line = blocks[0][0] + 1 if blocks else loc.key_line("checks", "tasks", task_index)
    key_line = key_line or task_line
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        problem("'checks' must be [[tasks.checks]] tables (a list of tables)", key_line)
        return ()
    if raw and not writes_target:
        problem(
            "checks need a task that writes a dataset (an ingestion, or a transformation "
            "with 'target_dataset_id'): this task publishes nothing to check",
            key_line,
        )
        return ()
    specs: list[CheckSpec] = []
    for i, table in enumerate(raw):
        block = blocks[i] if len(blocks) == len(raw) else None

        def at(key: str | None, _b: tuple[int, int] | None = block) -> int | None:
            if _b is None:
                return key_line
            return _key_line(loc, _b, key) if key else _b[0] + 1

        def report(message: str, key: str | None, _i: int = i) -> None:
            problem(f"check #{_i + 1}: {message}", at(key))

        spec = _parse_one(table, report, known_columns, at(None))
        if spec is not None:
            specs.append(spec)
    return _unique_names(specs, problem)


def _parse_one(
    table: Mapping[str, Any], report: Report, known: Collection[str], line: int | None
) -> CheckSpec | None:
    kind = table.get("type")
    if not isinstance(kind, str) or kind not in CHECK_TYPES:
        hint = did_you_mean(kind, CHECK_TYPES) if isinstance(kind, str) else ""
        shown = "missing 'type'" if kind is None else f"unknown type {clip(repr(kind))}{hint}"
        report(f"{shown} (known: {', '.join(CHECK_TYPES)})", "type" if kind else None)
        return None
    allowed = COMMON_KEYS | TYPE_KEYS[kind]
    for key in table:
        if key not in allowed:
            where = " (it belongs to another check type)" if key in ALL_KEYS else ""
            report(f"unknown key '{key}' in a {kind} check{did_you_mean(key, allowed)}{where}", key)
    severity = table.get("severity", "error")
    if severity not in SEVERITIES:
        report(
            f'\'severity\' must be "error" or "warn", got {clip(repr(severity))}'
            f"{did_you_mean(str(severity), SEVERITIES)}",
            "severity",
        )
        severity = "error"
    name = table.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        report(f"'name' must be letters, digits, '_', '-' or '.', got {clip(repr(name))}", "name")
        name = None
    fields = _type_fields(kind, table, report, known)
    if fields is None:
        return None
    return CheckSpec(type=kind, name=name or "", severity=severity, line=line, **fields)


def _type_fields(
    kind: str, table: Mapping[str, Any], report: Report, known: Collection[str]
) -> dict[str, Any] | None:
    """The fields of a check of type ``kind``; ``None`` when one is wrong (reported)."""
    out: dict[str, Any] = {}
    if "column" in TYPE_KEYS[kind]:
        columns = _columns(table.get("column"), kind, report, known)
        if columns is None:
            return None
        out["columns"] = columns
    if kind == "accepted_values":
        values = table.get("values")
        if not isinstance(values, list) or not values or not all(_scalar(v) for v in values):
            report("'values' must be a non-empty list of strings, numbers or booleans", "values")
            return None
        out["values"] = tuple(values)
    elif kind == "relationships":
        return _relationship(table, report, out)
    elif kind == "row_count":
        return _row_count(table, report)
    elif kind == "expression":
        sql = table.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            report("an expression check needs 'sql', a SELECT of the failing rows", "sql")
            return None
        out["sql"] = sql
    return out


def _columns(raw: Any, kind: str, report: Report, known: Collection[str]) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        raw = [raw]
    many = kind == "unique"
    if not (isinstance(raw, list) and raw and all(isinstance(c, str) and c for c in raw)) or (
        len(raw) > 1 and not many
    ):
        what = "a column name or a list of column names" if many else "a column name"
        report(f"a {kind} check needs 'column', {what}", "column")
        return None
    for col in raw:
        if known and col not in known:
            report(
                f"unknown column '{clip(col)}'{did_you_mean(col, known)} "
                f"(the task's columns: {', '.join(known)})",
                "column",
            )
            return None
    return tuple(raw)


def _relationship(
    table: Mapping[str, Any], report: Report, out: dict[str, Any]
) -> dict[str, Any] | None:
    to = table.get("to")
    ref = parse_ref(to) if isinstance(to, str) else None
    if ref is None:
        report(
            "'to' must be \"ref('dataset')\" or \"ref('flow_id', 'dataset')\", "
            f"got {clip(repr(to))}",
            "to",
        )
        return None
    field = table.get("field", out["columns"][0])
    if not isinstance(field, str) or not field:
        report("'field' must be the column name of the referenced dataset", "field")
        return None
    return {**out, "to_flow": ref[0], "to_dataset": ref[1], "field": field}


def _row_count(table: Mapping[str, Any], report: Report) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for key in ("min", "max"):
        value = table.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            report(f"'{key}' must be a whole number, 0 or more, got {clip(repr(value))}", key)
            return None
        out[key] = value
    if out["min"] is not None and out["max"] is not None and out["min"] > out["max"]:
        report(f"'min' ({out['min']}) is more than 'max' ({out['max']})", "min")
        return None
    compare = table.get("compare_to")
    percent = table.get("within_percent")
    if compare is None:
        if percent is not None:
            report("'within_percent' needs 'compare_to'", "within_percent")
            return None
        if out["min"] is None and out["max"] is None:
            report(
                "a row_count check needs 'min', 'max', or 'compare_to' and 'within_percent'", None
            )
            return None
        return out
    parsed = _compare_to(compare, report)
    if parsed is None:
        return None
    if (
        isinstance(percent, bool)
        or not isinstance(percent, (int, float))
        or not (math.isfinite(percent) and percent >= 0)
    ):
        report("'compare_to' needs 'within_percent', a number 0 or more", "within_percent")
        return None
    return {**out, "compare_to": parsed, "within_percent": float(percent)}


def _compare_to(raw: Any, report: Report) -> CompareTo | None:
    if not isinstance(raw, dict):
        report(
            "'compare_to' must be a table such as "
            '{task = "load", key = "rows_loaded", run = "previous"}',
            "compare_to",
        )
        return None
    for key in raw:
        if key not in COMPARE_KEYS:
            report(
                f"unknown key '{key}' in 'compare_to'{did_you_mean(key, COMPARE_KEYS)}",
                "compare_to",
            )
            return None
    task, key, run = raw.get("task"), raw.get("key"), raw.get("run", "previous")
    if not isinstance(task, str) or not task or not isinstance(key, str) or not key:
        report("'compare_to' needs 'task' and 'key', both strings", "compare_to")
        return None
    if run not in COMPARE_RUNS:
        report(
            f'\'compare_to\' run must be "previous" or "current", got {clip(repr(run))}'
            f"{did_you_mean(str(run), COMPARE_RUNS)}",
            "compare_to",
        )
        return None
    return CompareTo(task, key, run)


def _unique_names(
    specs: Sequence[CheckSpec], problem: Callable[[str, int | None], None]
) -> tuple[CheckSpec, ...]:
    """Each unnamed check named ``<type>_<columns>`` (``_2``, ``_3`` … when taken); two
    checks given one name are a problem."""
    import dataclasses

    given = [s.name for s in specs if s.name]
    taken = set(given)
    for name in sorted({n for n in given if given.count(n) > 1}):
        line = next(s.line for s in specs if s.name == name)
        problem(f"two checks are named '{name}': give each its own 'name'", line)
    out = []
    for spec in specs:
        if not spec.name:
            base = "_".join((spec.type, *spec.columns))
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            taken.add(name)
            spec = dataclasses.replace(spec, name=name)
        out.append(spec)
    return tuple(out)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int)) or (
        isinstance(value, float) and math.isfinite(value)
    )
