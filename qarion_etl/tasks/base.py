"""The task interface: ``BaseTask.execute(ctx) -> dict`` and the ``TaskContext`` it gets.

A task does its work on ``ctx.db`` (the warehouse) and returns its result as a JSON-able
dict (``rows_loaded``, ``target_dataset`` …). The runner adds ``status``, ``batch_id`` and
``duration_seconds``, records the task instance and pushes the result to XCom; tasks know
nothing about XCom except through ``ctx.render`` (templates may pull).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.db.connection import Connection
from qarion_etl.db.service import DatabaseService
from qarion_etl.definitions.flow import Flow, TaskSpec
from qarion_etl.errors import Interrupted, TaskTimedOut

if TYPE_CHECKING:
    from qarion_etl.definitions.refs import ModelIndex


@dataclass
class TaskContext:
    """Everything a task needs for one try."""

    flow: Flow
    spec: TaskSpec
    db: DatabaseService
    root: Path
    batch_id: int
    dag_run_id: str
    #: Renders a template; ``incremental=True`` makes its ``is_incremental()`` true.
    render: Callable[..., str]
    full_refresh: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    write_lock: threading.Lock | None = None
    interrupters: dict[int, Callable[[], None]] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() after which the try has timed out
    #: Called with the rows so far and the share of the input read (either may be unknown)
    #: while a long task works; the runner passes it on to the live view, at most once a second.
    progress: Callable[[int | None, float | None], None] | None = None
    #: Raises when a newer try of the task has started (``Superseded``); ``None`` where
    #: no other process runs tries of the task.
    fence: Callable[[], None] | None = None
    #: The XCom value a check's ``compare_to`` names: ``(task_id, key, run)`` with run
    #: ``previous`` or ``current``; ``None`` when there is none (or no XCom).
    pull_value: Callable[[str, str, str], Any] | None = None
    #: Masks the configuration's secrets in a text (check samples).
    scrub: Callable[[str], str] = field(default=lambda text: text)
    #: The project's flows and macros (what ``ref()`` resolves against).
    models: ModelIndex | None = None
    _interrupt_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def namespace(self) -> str:
        return self.flow.namespace

    @property
    def processing_type(self) -> str:
        return "FULL_REFRESH" if self.full_refresh else self.spec.processing_type

    def resolve_path(self, path: str) -> Path:
        """A path from task config, relative to the project root."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    def check_cancel(self) -> None:
        """Raise ``Interrupted`` when the run is being stopped."""
        if self.cancel.is_set():
            raise Interrupted("interrupted", task_id=self.spec.id)
        if self.timed_out():
            raise TaskTimedOut(f"timed out after {self.spec.timeout_seconds:g}s (timeout_seconds)")

    def before_publish(self) -> None:
        """The last check before a dataset is published: stopped, timed out or superseded."""
        self.check_cancel()
        if self.fence is not None:
            self.fence()

    def timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def interrupt(self) -> None:
        """Abandon the statements this try is running (where the driver can).

        Under ``_interrupt_lock``: a connection leaves ``interrupters`` (and is closed
        after) only between two interrupts, never during one; a driver told to interrupt
        a connection being closed may crash the process.
        """
        with self._interrupt_lock:
            for stop in list(self.interrupters.values()):
                try:
                    stop()
                except Exception:  # the statement may just have finished
                    pass

    @contextmanager
    def interruptible(self, conn: Connection) -> Iterator[None]:
        """While inside, Ctrl-C and the timeout also cancel the statement running on ``conn``.

        Where the driver can (``conn.cancellable``: DuckDB, SQLite, PostgreSQL); elsewhere
        the task stops at its next check between batches or before the swap.
        """
        if not conn.cancellable:
            yield
            return
        with self._interrupt_lock:
            self.interrupters[id(conn)] = conn.cancel
        try:
            yield
        finally:
            with self._interrupt_lock:
                self.interrupters.pop(id(conn), None)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the warehouse write lock (SQLite allows one writer at a time)."""
        if self.write_lock is None:
            yield
            return
        with self.write_lock:
            yield


class BaseTask:
    """Base of every task type.

    Example::

        class EchoTask(BaseTask):
            def execute(self, ctx: TaskContext) -> dict[str, Any]:
                return {"message": ctx.render(self.spec.config["text"])}
    """

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    def execute(self, ctx: TaskContext) -> dict[str, Any]:
        """Do the work of one try and return the result fields."""
        raise NotImplementedError
