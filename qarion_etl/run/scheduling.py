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
    order = _Order(todo, graph, outcomes, reporter, fail_fast, cancel)
    if workers <= 1 or len(todo) <= 1:
        while order.more():
            order.settle(run_task(order.ready.pop(0)))
        return
    running: dict[Future[TaskOutcome], str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qarion-task") as pool:
        try:
            while order.more() or running:
                while order.more() and len(running) < workers:
                    tid = order.ready.pop(0)
                    running[pool.submit(run_task, tid)] = tid
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.pop(fut)
                    order.settle(fut.result())
        except KeyboardInterrupt:
            cancel.set()
            for fut in running:
                fut.cancel()
            on_interrupt()  # DuckDB: abandon the running statements; their writes roll back
            raise


class _Order:
    """Which tasks are ready, and what each finished task means for the others."""

    def __init__(
        self,
        todo: list[str],
        graph: TaskGraph,
        outcomes: dict[str, TaskOutcome],
        reporter: Reporter,
        fail_fast: bool,
        cancel: threading.Event,
    ) -> None:
        self.todo, self.graph, self.outcomes = todo, graph, outcomes
        self.reporter, self.fail_fast, self.cancel = reporter, fail_fast, cancel
        todo_set = self.todo_set = set(todo)
        self.waiting = {t: {p for p in graph.predecessors(t) if p in todo_set} for t in todo}
        self.ready = [t for t in todo if not self.waiting[t]]
        self.done = 0
        self.stop = False

    def more(self) -> bool:
        """Whether a task can start now."""
        return bool(self.ready) and not self.stop and not self.cancel.is_set()

    def settle(self, outcome: TaskOutcome) -> None:
        """``outcome`` is final: report it, free its children, or skip its descendants."""
        self.done += 1
        self.reporter.task_finished(outcome, self.done, len(self.todo))
        if outcome.status == TaskStatus.SUCCESS:
            for child in self.graph.successors(outcome.task_id):
                waiting = self.waiting.get(child)
                if waiting is not None and outcome.task_id in waiting:
                    waiting.discard(outcome.task_id)
                    if not waiting and self.outcomes[child].status == TaskStatus.NOT_RUN:
                        self.ready.append(child)
            return
        if self.fail_fast:
            self.stop = True
            self.cancel.set()
        below = self.graph.descendants(outcome.task_id) & self.todo_set
        for desc in sorted(below, key=self.todo.index):
            o = self.outcomes[desc]
            if o.status == TaskStatus.NOT_RUN and not o.started_at:
                o.status = TaskStatus.SKIPPED
                o.error = f"upstream task '{outcome.task_id}' {outcome.status}"
                self.waiting.pop(desc, None)
                self.done += 1
                self.reporter.task_finished(o, self.done, len(self.todo))
