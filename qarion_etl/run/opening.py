"""How a run begins: a new run, a resumed one, or one joined by an orchestrator's task.

``open_run`` finds or records the run and returns an ``Opening``: its ids, and what the
tasks need to know of the run's past (which tasks are kept from a resumed run, which may
have values to clear, how many tries each had, in which run each upstream task last
succeeded). A new run draws its batch id in the transaction that records it, so
processes starting one run at once (an orchestrator's first tasks) share one batch id and
skip none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qarion_etl.errors import RunInOtherFlow, RunNotFound, RunStillRunning
from qarion_etl.run.model import RunRequest, RunStatus, TaskOutcome, TaskStatus, new_run_id
from qarion_etl.run.owner import owner_alive
from qarion_etl.run.plans import plan_of

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.definitions.refs import ModelIndex
    from qarion_etl.run.drivers import Driver
    from qarion_etl.run.history import RunRecord, RunStore, TaskInstanceRecord


@dataclass
class Opening:
    """A run as it begins."""

    dag_run_id: str
    batch_id: int
    #: Tasks that may have values in the run already: cleared before their first try.
    clear_first: set[str] = field(default_factory=set)
    #: Tries each task had in this run before (this process counts on from there).
    try_base: dict[str, int] = field(default_factory=dict)
    #: The run each upstream task's values are read from.
    run_for_task: dict[str, str] = field(default_factory=dict)
    #: Seconds a resumed run worked in its earlier parts.
    worked_before: float = 0.0


def open_run(
    store: RunStore,
    flow: Flow,
    graph: TaskGraph,
    outcomes: dict[str, TaskOutcome],
    request: RunRequest,
    driver: Driver,
    *,
    started_at: str,
    scrub: Callable[[str], str],
    index: ModelIndex | None = None,
) -> Opening:
    """Find or record the run ``request`` names; marks the tasks a resume keeps ``kept``.

    Raises:
        RunNotFound, RunInOtherFlow: the run to resume does not exist in this flow.
        RunStillRunning: the run to resume is still running in a live process.
        RunExists: a new run's id is taken (and this is not an orchestrator's task).
    """
    record = _existing(store, flow, request)
    if record is None:
        record, created = store.open_run(
            request.run_id or new_run_id(flow.id),
            flow.id,
            started_at,
            batch_id=request.batch_id,
            owned=driver.owns_run(),
            join=request.task is not None,  # another process may start it at this moment
        )
        if created:  # what this run executes, for its pictures (the first one is kept)
            store.save_plan(flow.id, record.dag_run_id, plan_of(flow, graph, scrub, index))
            opening = Opening(record.dag_run_id, record.batch_id)
            _upstream_runs(store, flow, graph, outcomes, opening)
            return opening
    opening = _reopen(store, flow, outcomes, request, driver, record)
    _upstream_runs(store, flow, graph, outcomes, opening)
    return opening


def _existing(store: RunStore, flow: Flow, request: RunRequest) -> RunRecord | None:
    """The run a resume or a task of a run names (``None``: a new run)."""
    existing = request.resume or (request.run_id if request.task else None)
    record = store.get_run(existing, flow.id) if existing else None
    if request.resume and record is None:
        others = store.runs_with_id(request.resume)
        if others:
            raise RunInOtherFlow(request.resume, flow.id, others[0].flow_id)
        raise RunNotFound(request.resume, flow.id)
    if request.resume and record is not None and record.status == RunStatus.RUNNING:
        owner = record.owner
        if owner and owner_alive(owner):
            raise RunStillRunning(request.resume, owner.get("pid"), owner.get("host"))
    return record


def _reopen(
    store: RunStore,
    flow: Flow,
    outcomes: dict[str, TaskOutcome],
    request: RunRequest,
    driver: Driver,
    record: RunRecord,
) -> Opening:
    """A run that exists: resumed, or joined by one more of its tasks."""
    opening = Opening(record.dag_run_id, record.batch_id)
    prior = {ti.task_id: ti for ti in store.task_instances(flow.id, record.dag_run_id)}
    if request.resume:
        _keep_succeeded(outcomes, prior)
        if record.ended_at:  # the parts a resumed run worked add up
            opening.worked_before = record.duration_seconds or 0.0
    # Values of a task may exist in the run when it ran in it before, or when an
    # orchestrator runs a try after the first (the earlier one may have pushed some).
    again = request.task is not None and driver.try_number() > 1
    opening.clear_first = {t for t in outcomes if t in prior or again}
    if driver.retries_tasks():  # an orchestrator counts its own tries
        opening.try_base = {t: prior[t].try_number for t in outcomes if t in prior}
        for t, base in opening.try_base.items():  # a task skipped now keeps its count
            outcomes[t].tries = max(outcomes[t].tries, base)
    opening.run_for_task = {
        t: record.dag_run_id for t, ti in prior.items() if ti.status == TaskStatus.SUCCESS
    }
    if record.status != RunStatus.RUNNING or driver.owns_run():  # else it runs already
        store.reopen_run(
            flow.id,
            record.dag_run_id,
            owned=driver.owns_run(),
            worked=opening.worked_before or None,
        )
    return opening


def _keep_succeeded(outcomes: dict[str, TaskOutcome], prior: dict[str, TaskInstanceRecord]) -> None:
    """A resume keeps the tasks that succeeded: ``kept``, with what they did then."""
    for tid, ti in prior.items():
        if tid in outcomes and ti.status == TaskStatus.SUCCESS:
            o = outcomes[tid]
            o.status, o.tries, o.rows = TaskStatus.KEPT, ti.try_number, ti.rows
            o.xcom_keys, o.started_at, o.ended_at = ti.xcom_keys, ti.started_at, ti.ended_at


def _upstream_runs(
    store: RunStore,
    flow: Flow,
    graph: TaskGraph,
    outcomes: dict[str, TaskOutcome],
    opening: Opening,
) -> None:
    """Upstream tasks this run does not execute: read their values from the run where they
    last succeeded."""
    for tid in outcomes:
        for up in graph.ancestors(tid):
            if up not in outcomes and up not in opening.run_for_task:
                found = store.last_success_run_of_task(flow.id, up)
                if found:
                    opening.run_for_task[up] = found
