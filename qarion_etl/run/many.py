"""Several flows at once: ``run_flows``, one call, one ``FlowsResult``.

Each flow runs as it would alone (its own run id, batch, history and results file), on a
thread of its own, driven by ``SharedSlots``: the tasks of all of them share the request's
``max_workers`` slots, so no more tasks run at once than asked. A flow starts once the
flows whose datasets it reads through ``ref()`` have succeeded; when one of them did not,
it does not run (``run.across``). With a selection, ``+x`` and ``x+`` cross into the tasks
of upstream and downstream flows, and a flow with no task selected is left out. A flow that does
not load or validate is kept as its error and the others go on. Setting ``stop`` (the
command line does on Ctrl-C and SIGTERM) stops every flow: running tasks are interrupted,
the rest is not started, and each run is recorded ``interrupted``.

The result's exit code is the gravest of the flows': 130 interrupted, 3 a store
unreachable, 2 a flow that does not validate, 1 a failed task, 0 when every flow succeeded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from qarion_etl.errors import QarionError
from qarion_etl.run.across import flow_waits, select_across
from qarion_etl.run.drivers import SharedSlots
from qarion_etl.run.model import RunRequest, RunResult, RunStatus

if TYPE_CHECKING:
    from qarion_etl.project import Project
    from qarion_etl.run.reporting import Reporter

#: Gravity of an exit code: the gravest wins.
_GRAVITY = {130: 4, 3: 3, 2: 2, 1: 1, 0: 0}


@dataclass
class FlowsResult:
    """What became of each of several flows run at once."""

    refs: list[str]
    results: dict[str, RunResult] = field(default_factory=dict)
    errors: dict[str, QarionError] = field(default_factory=dict)
    interrupted: bool = False
    duration_seconds: float = 0.0

    def code(self, ref: str) -> int:
        """The exit code of one flow."""
        error, result = self.errors.get(ref), self.results.get(ref)
        if error is not None:
            return error.exit_code
        if result is None:  # the flow's thread ended without a word: count it failed
            return 1
        if result.ok:
            return 0
        if result.status == RunStatus.INTERRUPTED:
            return 130
        failed = result.first_failure()
        return (failed.exit_code if failed is not None else None) or 1

    @property
    def exit_code(self) -> int:
        """The gravest flow's exit code (130 once the flows were stopped)."""
        if self.interrupted:
            return 130
        codes = [self.code(ref) for ref in self.refs] or [0]
        return max(codes, key=lambda c: _GRAVITY.get(c, 1))


def run_flows(
    project: Project,
    refs: list[str],
    request: RunRequest,
    *,
    reporter_for: Callable[[str], Reporter],
    stop: threading.Event | None = None,
    on_error: Callable[[str, QarionError], None] = lambda ref, exc: None,
) -> FlowsResult:
    """Run the flows ``refs`` at once (see the module docstring).

    Args:
        reporter_for: the reporter of each flow's run.
        stop: set it to stop every flow.
        on_error: hears of a flow that could not run (as soon as it happens).
    """
    from qarion_etl.run.runner import FlowRunner

    requests = _requests(project, refs, request)
    refs = [ref for ref in refs if ref in requests]
    waits = flow_waits(project, refs)
    finished = {ref: threading.Event() for ref in refs}
    slots = threading.BoundedSemaphore(request.max_workers or os.cpu_count() or 1)
    driver = SharedSlots(slots, stop or threading.Event())
    out = FlowsResult(list(refs))
    lock = threading.Lock()

    def one(ref: str) -> None:
        try:
            _after_upstream(ref, waits[ref], finished, out, driver.stopping)
            result = FlowRunner(project, reporter_for(ref)).run(ref, requests[ref], driver=driver)
        except QarionError as exc:
            failed = exc
        except BaseException as exc:  # a bug, or Ctrl-C reaching this thread: not lost
            failed = QarionError(f"{type(exc).__name__}: {exc}")
            failed.exit_code = 130 if isinstance(exc, KeyboardInterrupt) else 1
        else:
            with lock:
                out.results[ref] = result
            return
        with lock:
            out.errors[ref] = failed
        on_error(ref, failed)

    def one_then_done(ref: str) -> None:
        try:
            one(ref)
        finally:
            finished[ref].set()

    started = time.perf_counter()
    threads = [threading.Thread(target=one_then_done, args=(r,), name=f"flow-{r}") for r in refs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.interrupted = driver.stopping.is_set()
    out.duration_seconds = round(time.perf_counter() - started, 4)
    return out


class UpstreamNotDone(QarionError):
    """A flow of a multi-flow run did not start: a flow whose datasets it reads did not succeed."""

    exit_code = 1


def _after_upstream(
    ref: str,
    upstream: list[str],
    finished: dict[str, threading.Event],
    out: FlowsResult,
    stopping: threading.Event,
) -> None:
    """Wait until every flow of ``upstream`` has ended; raise if one did not succeed."""
    for up in upstream:
        while not finished[up].wait(0.05):
            if stopping.is_set():
                return  # the run itself records the interruption
        if out.code(up) != 0:
            raise UpstreamNotDone(
                f"not run: it reads datasets of flow '{up}', which did not succeed"
            )


def _requests(project: Project, refs: list[str], request: RunRequest) -> dict[str, RunRequest]:
    """Each flow's request: with a selection, the tasks it selects across all the flows."""
    if len(refs) < 2 or not (request.select or request.exclude or request.selector):
        return {ref: request for ref in refs}
    chosen = select_across(project, refs, request)
    return {
        ref: replace(request, select=tasks, exclude=[], selector=None) if tasks else request
        for ref, tasks in chosen.items()
    }
