"""The task interface: ``BaseTask.execute(ctx) -> dict`` and the ``TaskContext`` it gets.

A task does its work on ``ctx.db`` (the warehouse) and returns its result as a JSON-able
dict (``rows_loaded``, ``target_dataset`` …). The runner adds ``status``, ``batch_id`` and
``duration_seconds``, records the task instance and pushes the result to XCom; tasks know
nothing about XCom except through ``ctx.render`` (templates may pull).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import QarionError

if TYPE_CHECKING:
    from qarion_etl.db_service import DatabaseService
    from qarion_etl.flow import Flow, TaskSpec


class Interrupted(QarionError):
    """The run was interrupted (Ctrl-C) while this task ran."""

    exit_code = 130


@dataclass
class TaskContext:
    """Everything a task needs for one try."""

    flow: Flow
    spec: TaskSpec
    db: DatabaseService
    root: Path
    batch_id: int
    dag_run_id: str
    render: Callable[[str], str]
    full_refresh: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    write_lock: threading.Lock | None = None
    interrupters: dict[int, Callable[[], Any]] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() after which the try has timed out

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
            raise QarionError(f"timed out after {self.spec.timeout_seconds:g}s (timeout_seconds)")

    def timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def interrupt(self) -> None:
        """Abandon the statements this try is running (where the driver can)."""
        for stop in list(self.interrupters.values()):
            try:
                stop()
            except Exception:  # the statement may just have finished
                pass

    @contextmanager
    def interruptible(self, conn: Any) -> Iterator[None]:
        """While inside, Ctrl-C also interrupts the statement running on ``conn`` (DuckDB)."""
        raw = getattr(getattr(conn, "connection", None), "dbapi_connection", None)
        stop = getattr(raw, "interrupt", None)
        if stop is None:
            yield
            return
        self.interrupters[id(conn)] = stop
        try:
            yield
        finally:
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


def describe_db_error(exc: BaseException, sql: str | None = None) -> str:
    """A one-line message for a database error: the driver's text and a short statement."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    first = text.splitlines()[0] if text else type(orig).__name__
    if sql:
        short = " ".join(sql.split())
        short = short if len(short) <= 120 else short[:117] + "..."
        return f"{first} [SQL: {short}]"
    return first


@contextmanager
def database_errors(sql: str | None = None) -> Iterator[None]:
    """Turn a SQLAlchemy/driver error into a ``QarionError`` with a short message."""
    try:
        yield
    except Exception as exc:
        sa = sys.modules.get("sqlalchemy")  # only loaded when a database needs it
        if sa is not None and isinstance(exc, sa.exc.DBAPIError):
            if exc.connection_invalidated:
                raise QarionError(
                    f"lost the warehouse connection: {describe_db_error(exc)}"
                ) from exc
            raise QarionError(describe_db_error(exc, sql)) from exc
        if sa is not None and isinstance(exc, sa.exc.SQLAlchemyError):
            raise QarionError(describe_db_error(exc, sql)) from exc
        # Errors of a driver: a native connection, a raw cursor (COPY, executemany), DuckDB.
        if type(exc).__module__.split(".")[0] in _DRIVER_MODULES:
            raise QarionError(describe_db_error(exc, sql)) from exc
        raise


_DRIVER_MODULES = frozenset({"sqlite3", "psycopg", "pymysql", "duckdb", "_duckdb"})
