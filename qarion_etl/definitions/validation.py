"""Whole-flow validation: schema (``flow_parser``), graph (``dag``) and templates, together."""

from __future__ import annotations

import re
from collections.abc import Callable

from qarion_etl.definitions.dag import graph_problems, task_graph
from qarion_etl.definitions.flow import Flow, TaskSpec
from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.definitions.task_types import task_type
from qarion_etl.definitions.templates import find_pulls, parse_template
from qarion_etl.errors import FlowValidationError, Problem, did_you_mean


def _sql_line(flow: Flow, task: TaskSpec) -> tuple[int | None, bool]:
    """The file line of the task's ``sql =`` and whether the string starts on the next line."""
    if task.line is None or not flow.text:
        return task.line, False
    lines = flow.text.splitlines()
    pattern = re.compile(r'^\s*"?sql"?\s*=\s*(""")?(.*)$')
    for i in range(task.line - 1, len(lines)):
        if i > task.line - 1 and lines[i].strip().startswith("[[tasks]]"):
            break
        m = pattern.match(lines[i])
        if m:
            return i + 1, bool(m.group(1)) and not m.group(2).strip()
    return task.line, False


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
)


def _name_line(sql: str, name: str, at: Callable[[int], int | None]) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(sql.splitlines(), start=1):
        if "{" in text and pattern.search(text):
            return at(number)
    return at(1)


def template_problems(
    flow: Flow, graph: TaskGraph | None, *, xcom_enabled: bool = True
) -> list[Problem]:
    """Jinja syntax errors, and pulls from unknown or non-upstream tasks."""
    import jinja2
    from jinja2 import meta

    problems: list[Problem] = []
    known = set(flow.task_ids)
    for task in flow.tasks:
        kind = task_type(task.type)
        sql = task.config.get("sql")
        if kind is None or not kind.has_sql or not isinstance(sql, str):
            continue
        sql_line, starts_below = _sql_line(flow, task)

        def at(lineno: int, _l: int | None = sql_line, _s: bool = starts_below) -> int | None:
            if _l is None:
                return None
            return _l + lineno if _s else _l + lineno - 1

        try:
            tree = parse_template(sql)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(
                Problem(f"SQL template syntax error: {exc.message}", at(exc.lineno or 1), task.id)
            )
            continue
        available = set(CONTEXT_NAMES)
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


def validate_flow(flow: Flow, *, xcom_enabled: bool = True) -> TaskGraph:
    """Run every check; raises ``FlowValidationError`` with all problems, else returns the DAG."""
    problems = graph_problems(flow)
    graph = task_graph(flow) if not problems else None
    problems += template_problems(flow, graph, xcom_enabled=xcom_enabled)
    if problems:
        raise FlowValidationError(flow.shown_path, problems)
    assert graph is not None
    return graph
