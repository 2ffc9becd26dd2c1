"""What is wrong with a flow's checks that only the whole flow (and project) can tell, and
where a ``relationships`` check's ``to = "ref(...)"`` points: a flow's namespace and dataset.

``ref('dataset')`` and ``ref('flow_id', 'dataset')`` resolve as ``ref()`` in SQL does
(``refs.ModelIndex``); ``resolve_ref`` answers with the namespace that holds the table, and
``ref_problems`` lists the checks whose reference names nothing, for validation. A check's
refs are edges of the task graph like its SQL's (``refs.check_refs``), so the dataset it
reads is written before it runs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from qarion_etl.definitions.checks import CheckSpec
from qarion_etl.definitions.flow import Flow
from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.definitions.refs import ModelIndex, RefError
from qarion_etl.errors import Problem, clip, did_you_mean


class UnknownRef(LookupError):
    """A ``ref()`` that names no dataset; ``choices`` are the datasets it could have meant."""

    def __init__(self, message: str, choices: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.choices = choices


def resolve_ref(
    flow: Flow, to_flow: str | None, dataset: str, index: ModelIndex | None = None
) -> tuple[str, str]:
    """``(namespace, dataset)`` of ``ref([to_flow,] dataset)`` read from ``flow``.

    ``index`` is the project's (``Project.models()``), as ``ref()`` in SQL resolves; without
    one, ``flow`` alone.

    Raises:
        UnknownRef: no flow writes that dataset (or no such flow).
    """
    try:
        found = (index or ModelIndex()).with_flow(flow).resolve(flow, to_flow, dataset)
    except RefError as exc:
        raise UnknownRef(str(exc), []) from None
    return found.flow.namespace, found.dataset


def ref_problems(
    flow: Flow,
    graph: TaskGraph | None = None,
    *,
    xcom_enabled: bool = True,
    index: ModelIndex | None = None,
) -> list[Problem]:
    """Checks whose ``to`` names no dataset (or, with ``graph``, one written by a task of
    the flow that is not upstream: the check would race its writer), and what else
    ``checks.check_problems`` finds with the whole flow."""
    found: list[Problem] = []
    writers = {t.target_dataset_id: t.id for t in flow.tasks if t.target_dataset_id}
    for task in flow.tasks:
        upstream = graph.ancestors(task.id) if graph is not None else None
        found += check_problems(
            task.checks, flow.task_ids, task.id, upstream=upstream, xcom_enabled=xcom_enabled
        )
        for spec in task.checks:
            if spec.to_dataset is None:
                continue
            try:
                namespace, dataset = resolve_ref(flow, spec.to_flow, spec.to_dataset, index)
            except UnknownRef as exc:
                found.append(
                    Problem(
                        f"check '{spec.name}': 'to': {exc.message}",
                        _to_line(flow, spec),
                        task.id,
                    )
                )
                continue
            writer = writers.get(dataset) if namespace == flow.namespace else None
            if (
                graph is not None
                and writer not in (None, task.id)
                and (writer not in graph.ancestors(task.id))
            ):
                found.append(
                    Problem(
                        f"check '{spec.name}': '{dataset}' is written by '{writer}', which is "
                        f"not upstream of '{task.id}': add it to 'dependencies' so it runs first",
                        _to_line(flow, spec),
                        task.id,
                    )
                )
    return found


def _to_line(flow: Flow, spec: CheckSpec) -> int | None:
    """The line of ``to =`` in the check's table, else of the table."""
    if spec.line is None or not flow.text:
        return spec.line
    lines = flow.text.splitlines()
    for i in range(spec.line, min(len(lines), spec.line + 50)):
        text = lines[i].strip()
        if text.startswith("["):
            break
        if text.startswith("to") and text[2:].lstrip().startswith("="):
            return i + 1
    return spec.line


def check_problems(
    checks: Sequence[CheckSpec],
    task_ids: Collection[str],
    task_id: str,
    *,
    upstream: Collection[str] | None = None,
    xcom_enabled: bool = True,
) -> list[Problem]:
    """Problems of checks that need the whole flow.

    A ``compare_to`` of an unknown task, of the ``current`` run's value of a task that is
    not ``upstream`` (when the graph is known: it would race it), or while XCom is off; an
    ``expression`` whose SQL template does not parse.
    """
    found = []
    for spec in checks:
        cmp = spec.compare_to
        problem = None
        if cmp is not None and cmp.task not in task_ids:
            problem = f"compare_to names unknown task '{clip(cmp.task)}'{did_you_mean(cmp.task, task_ids)}"
        elif cmp is not None and not xcom_enabled:
            problem = "compare_to reads XCom, which is disabled ([xcom].enabled = false)"
        elif cmp is not None and cmp.run == "current" and upstream is not None:
            if cmp.task not in upstream:
                problem = (
                    f"compare_to reads the current run's value of '{clip(cmp.task)}', which is "
                    f"not upstream of '{task_id}': add it to 'dependencies' (or use run = "
                    '"previous")'
                )
        elif spec.sql is not None:
            problem = _template_problem(spec.sql)
        if problem is not None:
            found.append(Problem(f"check '{spec.name}': {problem}", spec.line, task_id))
    return found


def _template_problem(sql: str) -> str | None:
    import jinja2

    from qarion_etl.definitions.templates import is_plain, parse_template

    if is_plain(sql):
        return None
    try:
        parse_template(sql)
    except jinja2.TemplateSyntaxError as exc:
        return f"SQL template syntax error: {exc.message}"
    return None
