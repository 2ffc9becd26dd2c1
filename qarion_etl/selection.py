"""Choosing the tasks of a run (``--select``/``--exclude``) and reading ``--var`` values.

Selection follows dbt: ``task`` alone, ``+task`` with its ancestors, ``task+`` with its
descendants, ``+task+`` both; several values (repeated options, or separated by spaces or
commas) are a union; ``--exclude`` removes its union from the selection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.config import did_you_mean
from qarion_etl.errors import UsageError, clip

if TYPE_CHECKING:
    from qarion_etl.taskgraph import TaskGraph


def _items(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(v for v in value.replace(",", " ").split() if v)
    return out


def expand(graph: TaskGraph, selectors: Iterable[str], option: str = "--select") -> set[str]:
    """The union of the tasks named by ``selectors``."""
    chosen: set[str] = set()
    for item in _items(selectors):
        name = item.strip("+")
        if name not in graph:
            raise UsageError(
                f"{option} {clip(item)}: no task '{clip(name)}' in this flow{did_you_mean(name, list(graph))}"
            )
        chosen.add(name)
        if item.startswith("+"):
            chosen |= graph.ancestors(name)
        if item.endswith("+"):
            chosen |= graph.descendants(name)
    return chosen


def select_tasks(
    graph: TaskGraph, order: Sequence[str], select: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[str]:
    """The selected tasks, in ``order``."""
    chosen = expand(graph, select) if _items(select) else set(order)
    chosen -= expand(graph, exclude, "--exclude")
    if not chosen:
        raise UsageError("the selection is empty: no task to run")
    return [t for t in order if t in chosen]


def parse_value(text: str) -> Any:
    """A ``--var``/``--xcom`` value: JSON when it parses as JSON, else the string itself."""
    from qarion_etl.jsontext import TooDeep, loads

    try:
        return loads(text)
    except TooDeep as exc:
        raise UsageError(f"{text[:20]}…: {exc}") from None
    except ValueError:
        return text


def parse_pairs(pairs: Iterable[str], option: str) -> dict[str, Any]:
    """``name=value`` pairs into a dict (values parsed with ``parse_value``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option} {pair!r}: expected NAME=VALUE")
        out[name.strip()] = parse_value(value)
    return out


def load_vars_file(path: str | Path) -> dict[str, Any]:
    """Variables from a JSON or TOML file (a table of name = value)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--vars-file {path}: {exc.strerror or exc}") from exc
    try:
        if p.suffix.lower() == ".toml":
            import tomli

            data: Any = tomli.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"--vars-file {path}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(f"--vars-file {path}: expected a table of name = value")
    return data


def parse_xcom_values(pairs: Iterable[str]) -> dict[tuple[str, str], Any]:
    """``render --xcom task.key=value`` (``task=value`` means key ``return_value``)."""
    out: dict[tuple[str, str], Any] = {}
    for name, value in parse_pairs(pairs, "--xcom").items():
        task, _, key = name.partition(".")
        out[(task, key or "return_value")] = value
    return out
