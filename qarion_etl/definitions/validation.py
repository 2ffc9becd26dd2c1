"""Whole-flow validation: schema (``flow_parser``), graph (``dag``) and templates, together."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from qarion_etl.definitions.check_refs import ref_problems as check_ref_problems
from qarion_etl.definitions.dag import graph_problems, task_graph
from qarion_etl.definitions.flow import Flow, TaskSpec
from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.definitions.refs import ModelIndex, cycle_problem, macro_ref_edges, ref_problems
from qarion_etl.definitions.task_types import task_type
from qarion_etl.definitions.templates import (
    find_internals,
    find_pulls,
    find_vars,
    is_plain,
    parse_template,
)
from qarion_etl.errors import FlowValidationError, Problem, did_you_mean

#: Names every SQL template can use (``source_dataset``/``target_dataset`` when the task has them).
CONTEXT_NAMES = (
    "xcom_pull",
    "ti",
    "task_instance",
    "var",
    "flow_id",
    "task_id",
    "dag_run_id",
    "run_id",
    "batch_id",
    "ds",
    "ds_nodash",
    "params",
    "is_incremental",
)


def _name_line(sql: str, name: str, at: Callable[[int], int | None]) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(sql.splitlines(), start=1):
        if "{" in text and pattern.search(text):
            return at(number)
    return at(1)


def template_problems(
    flow: Flow,
    graph: TaskGraph | None,
    *,
    xcom_enabled: bool = True,
    only: Collection[str] | None = None,
    names: Collection[str] = (),
) -> list[Problem]:
    """Jinja syntax errors, and pulls from unknown or non-upstream tasks (of the tasks
    ``only`` names, when given). ``names`` are defined too (the project's macros)."""
    import jinja2
    from jinja2 import meta

    problems: list[Problem] = []
    known = set(flow.task_ids)
    for task in flow.tasks:
        if only is not None and task.id not in only:
            continue
        kind = task_type(task.type)
        sql = task.config.get("sql")
        if kind is None or not kind.has_sql or not isinstance(sql, str) or is_plain(sql):
            continue

        def at(lineno: int, _task: TaskSpec = task) -> int | None:
            return flow.sql_line(_task, lineno)

        try:
            tree = parse_template(sql)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(
                Problem(f"SQL template syntax error: {exc.message}", at(exc.lineno or 1), task.id)
            )
            continue
        for name, lineno in find_internals(tree):
            problems.append(
                Problem(
                    f"SQL template reaches for '{name}', a Python internal that templates "
                    "cannot use (they render in a sandbox)",
                    at(lineno),
                    task.id,
                )
            )
        available = set(CONTEXT_NAMES) | set(names)
        if task.source_dataset_id:
            available.add("source_dataset")
        if task.target_dataset_id:
            available.add("target_dataset")
        for name in sorted(meta.find_undeclared_variables(tree) - available):
            why = ""
            if name in ("source_dataset", "target_dataset"):
                why = f" (the task has no {name}_id)"
            problems.append(
                Problem(
                    f"SQL template uses undefined name '{name}'{why}{did_you_mean(name, available)}",
                    _name_line(sql, name, at),
                    task.id,
                )
            )
        ancestors = graph.ancestors(task.id) if graph is not None else set()
        for pull in find_pulls(tree):
            line = at(pull.lineno)
            if not xcom_enabled:
                problems.append(
                    Problem(
                        "xcom_pull is used but XCom is disabled ([xcom].enabled = false)",
                        line,
                        task.id,
                    )
                )
                continue
            if pull.other_flow or pull.task_ids is None:
                continue
            for target in pull.task_ids:
                if target not in known:
                    problems.append(
                        Problem(
                            f"xcom_pull from unknown task '{target}'{did_you_mean(target, known)}",
                            line,
                            task.id,
                        )
                    )
                elif target == task.id:
                    problems.append(
                        Problem("a task cannot xcom_pull its own values", line, task.id)
                    )
                elif graph is not None and target not in ancestors:
                    problems.append(
                        Problem(
                            f"xcom_pull from '{target}', which is not upstream of '{task.id}': add it to "
                            f"'dependencies' so it runs first",
                            line,
                            task.id,
                        )
                    )
    return problems


def validate_flow(
    flow: Flow,
    *,
    xcom_enabled: bool = True,
    only: Collection[str] | None = None,
    index: ModelIndex | None = None,
) -> TaskGraph:
    """Run every check; raises ``FlowValidationError`` with all problems, else returns the DAG.

    With ``only``, the templates of those tasks alone are read (one task of a run, in an
    orchestrator's process: the flow was validated whole when its DAG was built).
    ``index`` holds the project's other flows and macros, which ``ref()`` and macro calls
    may name (default: this flow alone, no macros).
    """
    index = (index or ModelIndex()).with_flow(flow)
    problems = graph_problems(flow)
    graph = task_graph(flow) if not problems else None
    if graph is not None:
        problems += _macro_edges(flow, graph, index)
    problems += template_problems(
        flow, graph, xcom_enabled=xcom_enabled, only=only, names={"ref", *index.macros.names}
    )
    problems += ref_problems(flow, index, only)
    cycle = cycle_problem(index, flow)
    if cycle is not None:
        problems.append(cycle)
    if any(t.checks for t in flow.tasks):
        problems += check_ref_problems(flow, graph, xcom_enabled=xcom_enabled, index=index)
    if problems:
        raise FlowValidationError(flow.shown_path, problems)
    assert graph is not None
    return graph


def _macro_edges(flow: Flow, graph: TaskGraph, index: ModelIndex) -> list[Problem]:
    """Add the edges of refs inside the macros the tasks call; a cycle they close is a
    problem."""
    added = False
    for upstream, task_id in macro_ref_edges(flow, index.macros):
        if not graph.has_edge(upstream, task_id):
            graph.add_edge(upstream, task_id, reason="ref")
            added = True
    cycle = graph.find_cycle() if added else []
    if not cycle:
        return []
    return [
        Problem(
            "tasks read each other's datasets in a cycle, through refs inside macros: "
            + " -> ".join(cycle)
        )
    ]


def offline_problems(
    flow: Flow, root: Path, variables: Mapping[str, Any] | None = None
) -> list[Problem]:
    """What ``qarion-etl validate`` also finds, which a run finds only when it gets there.

    An input file that does not exist, and a ``var('name')`` without a default that
    ``variables`` (the ``--var``/``--vars-file`` given to ``validate``) does not set. Not
    part of ``validate_flow``: a run checks its input files when it loads them, and a DAG
    file parsed by Airflow on a scheduler without the data must not fail.
    """
    import jinja2

    given = variables or {}
    problems: list[Problem] = []
    for task in flow.tasks:
        kind = task_type(task.type)
        raw_path = task.config.get("path")
        if task.type == "ingestion" and isinstance(raw_path, str) and "{" not in raw_path:
            path = Path(raw_path).expanduser()
            path = path if path.is_absolute() else root / path
            if not path.is_file():
                what = "is a folder" if path.is_dir() else "does not exist"
                problems.append(
                    Problem(
                        f"input file {raw_path!r} {what} (looked for {path})",
                        flow.config_line(task, "path"),
                        task.id,
                    )
                )
        sql = task.config.get("sql")
        if kind is None or not kind.has_sql or not isinstance(sql, str) or is_plain(sql):
            continue
        try:
            tree = parse_template(sql)
        except jinja2.TemplateSyntaxError:
            continue  # template_problems reports it
        for ref in find_vars(tree):
            if ref.name is None or ref.has_default or ref.name in given:
                continue
            problems.append(
                Problem(
                    f"var('{ref.name}') has no default and is not set: give "
                    f"--var {ref.name}=… (or --vars-file) to validate and run, or "
                    f"var('{ref.name}', default=…)",
                    flow.sql_line(task, ref.lineno),
                    task.id,
                )
            )
    return problems
