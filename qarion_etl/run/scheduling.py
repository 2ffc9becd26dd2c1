"""The order a run's tasks start in: dependencies first, independent tasks at once.

``schedule`` starts each task when every upstream task it waits for has succeeded, on up
to ``workers`` threads; a failed task marks its descendants ``skipped``; ``fail_fast``
stops starting tasks; Ctrl-C cancels the queued ones and interrupts the running ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.run.model import TaskOutcome, TaskStatus
from qarion_etl.run.reporting import Reporter


def schedule(
    todo: list[str],
    graph: TaskGraph,
    outcomes: dict[str, TaskOutcome],
    run_task: Callable[[str], TaskOutcome],
    reporter: Reporter,
    *,
    workers: int,
    fail_fast: bool,
    cancel: threading.Event,
    on_interrupt: Callable[[], Any],
) -> None:
    """Run ``todo`` (in topological order) through ``run_task``, settling each outcome."""
    todo_set = set(todo)
    waiting = {t: {p for p in graph.predecessors(t) if p in todo_set} for t in todo}
    ready = [t for t in todo if not waiting[t]]
    done_count = 0
    total = len(todo)
    stop = False

    def settle(outcome: TaskOutcome) -> None:
        nonlocal done_count, stop
        done_count += 1
        reporter.task_finished(outcome, done_count, total)
        if outcome.status == TaskStatus.SUCCESS:
            for child in graph.successors(outcome.task_id):
                if child in waiting and outcome.task_id in waiting[child]:
                    waiting[child].discard(outcome.task_id)
                    if not waiting[child] and outcomes[child].status == TaskStatus.NOT_RUN:
                        ready.append(child)
            return
        if fail_fast:
            stop = True
            cancel.set()
        for desc in sorted(graph.descendants(outcome.task_id) & todo_set, key=todo.index):
            o = outcomes[desc]
            if o.status == TaskStatus.NOT_RUN and not o.started_at:
                o.status = TaskStatus.SKIPPED
                o.error = f"upstream task '{outcome.task_id}' {outcome.status}"
                waiting.pop(desc, None)
                done_count += 1
                reporter.task_finished(o, done_count, total)

    if workers <= 1 or total <= 1:
        while ready and not stop and not cancel.is_set():
            settle(run_task(ready.pop(0)))
        return
    running: dict[Future[TaskOutcome], str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qarion-task") as pool:
        try:
            while (ready and not stop and not cancel.is_set()) or running:
                while ready and not stop and not cancel.is_set() and len(running) < workers:
                    tid = ready.pop(0)
                    running[pool.submit(run_task, tid)] = tid
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.pop(fut)
                    settle(fut.result())
        except KeyboardInterrupt:
            cancel.set()
            for fut in running:
                fut.cancel()
            on_interrupt()  # DuckDB: abandon the running statements; their writes roll back
            raise
