"""The statements a thread runs on one database, told to whoever records them.

A ``DatabaseService`` has one ``StatementLog``; every connection it hands out reports each
statement to it (``BEGIN`` and ``COMMIT`` included) before running it and when it ends.
Nothing is recorded unless the current thread is inside ``log.recording(sink)``: the runner
records each try of a task that way (the SQL file of the try, ``-v``), while XCom pulls,
run history and other threads go unrecorded. Outside a recording the cost is one
thread-local lookup per statement.

``Result`` is what running a statement gives back, and ``SqlRunner`` what runs statements:
every ``connection.Connection`` is one, and it is all the engines' loads need of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Result(Protocol):
    """The rows of one statement, read the way SQLAlchemy's ``Result`` is."""

    @property
    def rowcount(self) -> int: ...
    @property
    def returns_rows(self) -> bool: ...
    def keys(self) -> Any: ...
    def first(self) -> Any: ...
    def scalar(self) -> Any: ...
    def scalar_one(self) -> Any: ...
    def one(self) -> Any: ...
    def all(self) -> Sequence[Any]: ...
    def fetchall(self) -> Sequence[Any]: ...
    def fetchmany(self, size: int) -> Sequence[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def close(self) -> None: ...


class StatementSink(Protocol):
    """Receives the statements of one recording."""

    def started(self, sql: str, params: Sequence[Any] | None) -> None:
        """``sql`` is about to run (``params``: its parameters, if any)."""

    def finished(self, seconds: float, error: BaseException | None) -> None:
        """The statement last started ended after ``seconds`` (with ``error`` if it failed)."""

    def note(self, text: str) -> None:
        """A remark on the work done (``3,000 rows loaded``), not a statement."""


class StatementLog:
    """Where a database's connections report their statements (per thread)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def sink(self) -> StatementSink | None:
        """The current thread's recording, if any."""
        return getattr(self._local, "sink", None)

    @contextmanager
    def recording(self, sink: StatementSink) -> Iterator[None]:
        """Report the statements this thread runs inside the block to ``sink``."""
        previous = self.sink
        self._local.sink = sink
        try:
            yield
        finally:
            self._local.sink = previous

    def note(self, text: str) -> None:
        """Record work that is not one statement (a bulk load through the driver)."""
        sink = self.sink
        if sink is not None:
            sink.note(text)


def run_recorded(
    log: StatementLog | None,
    sql: str,
    params: Sequence[Any] | None,
    run: Any,
) -> Any:
    """``run()`` (which executes ``sql``), reported to the thread's recording if there is one."""
    sink = log.sink if log is not None else None
    if sink is None:
        return run()
    sink.started(sql, params)
    start = time.perf_counter()
    try:
        result = run()
    except BaseException as exc:
        sink.finished(time.perf_counter() - start, exc)
        raise
    sink.finished(time.perf_counter() - start, None)
    return result


class SqlRunner(Protocol):
    """Runs statements on one connection, and holds the driver's connection."""

    statement_log: StatementLog | None

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        """Run one statement (``?`` or ``%s`` placeholders as the dialect says)."""
        ...

    @property
    def raw(self) -> Any:
        """The driver's connection (for ``COPY`` and ``executemany``)."""
        ...
