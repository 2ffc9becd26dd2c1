"""Choosing the tasks of a run (``--select``/``--exclude``).

Selection follows dbt: ``task`` alone, ``+task`` with its ancestors, ``task+`` with its
descendants, ``+task+`` both; several values (repeated options, or separated by spaces or
commas) are a union; ``--exclude`` removes its union from the selection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.errors import UsageError, clip, did_you_mean


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
