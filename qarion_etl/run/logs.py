"""What a run leaves behind to debug it: its log, the SQL of every try, its events.

Every run has a folder, ``.qarion/runs/<flow_id>/<dag_run_id>/``, beside its results file
(``<dag_run_id>.json``):

- ``run.log``: one line per event (run and task start and end, retries, failures with
  their whole error, progress), with the time, the level and the task;
- ``<task_id>.sql``: every statement each try of the task executed (the rendered SELECT
  and the CREATE, INSERT, COPY or swap around it), in order, each with when it started
  and how long it took or how it failed; secrets of the configuration are masked.

``RunLog`` turns the runner's reporter calls into events: it writes them to ``run.log``,
logs them through ``logging`` (logger ``qarion_etl.run``, the fields in ``extra``), and
hands each one, as a dict with ``ts``, ``level``, ``event``, ``run_id``, ``flow_id`` and
``task_id`` where they apply, to the reporter's ``event`` method (``--log-format json``
prints them; ``-v`` shows the ``statement`` events), before passing the call on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from qarion_etl.escaping import visible
from qarion_etl.run.model import RunResult, TaskOutcome, TaskStatus
from qarion_etl.run.reporting import Reporter

log = logging.getLogger("qarion_etl.run")
# The library adds no handler but this one: a program that configures nothing sees
# nothing (not logging's last resort printing errors on stderr).
logging.getLogger("qarion_etl").addHandler(logging.NullHandler())

#: Seconds between two progress records of one task in run.log and the JSON log.
PROGRESS_EVERY = 10.0
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


#: Characters a file name keeps as they are (a ``.`` only after the first character).
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
#: The longest name ``file_name`` writes (file systems stop at 255 bytes).
_NAME_LIMIT = 200


def file_name(text: str) -> str:
    """``text`` as one file or folder name: two different texts never share a name.

    Letters, digits, ``_`` and ``-`` stay, as does a ``.`` after the first character;
    everything else is written ``%XX`` (its UTF-8 bytes), so ``.``, ``..``, ``a/b`` and
    ``a_b`` are distinct names inside the folder, never a path out of it. A name that
    would be longer than 200 characters keeps its start and ends with a hash of the text.
    """
    out = []
    for i, ch in enumerate(text):
        if ch in _PLAIN or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
    name = "".join(out) or "%"
    if len(name) > _NAME_LIMIT:
        import hashlib

        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        name = f"{name[: _NAME_LIMIT - 17].rstrip('%0123456789ABCDEF')}~{digest}"
    return name


def run_folder(state_dir: Path, flow_id: str, dag_run_id: str) -> Path:
    """``.qarion/runs/<flow_id>/<dag_run_id>/``: the run's log and SQL files.

    A run is identified by its flow and its run id: Airflow gives every DAG of a schedule
    the same run id, and each flow's run keeps its own folder.
    """
    return state_dir / "runs" / file_name(flow_id) / file_name(dag_run_id)


def results_file(state_dir: Path, flow_id: str, dag_run_id: str) -> Path:
    """``.qarion/runs/<flow_id>/<dag_run_id>.json``, beside the run's folder."""
    folder = run_folder(state_dir, flow_id, dag_run_id)
    return folder.with_name(folder.name + ".json")


def sql_file(folder: Path, task_id: str) -> Path:
    """``<task_id>.sql`` in a run's folder: the statements of every try of the task."""
    return folder / f"{file_name(task_id)}.sql"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunLog:
    """The events of one run: to ``run.log``, to ``logging`` and to the reporter.

    Args:
        folder: the run's folder (created on first write).
        flow_id, dag_run_id: the run, in every event.
        inner: the reporter the calls go on to (its ``event`` gets every event).
        scrub: masks the configuration's secrets in text.
    """

    def __init__(
        self,
        folder: Path,
        flow_id: str,
        dag_run_id: str,
        inner: Reporter,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.folder = folder
        self.path = folder / "run.log"
        self.flow_id = flow_id
        self.dag_run_id = dag_run_id
        self.inner = inner
        self.scrub = scrub
        self._lock = threading.Lock()
        self._progress_at: dict[str, float] = {}  # task id -> when its progress was last logged
        self._file: IO[str] | None = None
        self._broken = False

    # --- events ------------------------------------------------------------------------
    def emit(
        self, event: str, level: str = "info", task_id: str | None = None, **fields: Any
    ) -> None:
        """Record one event (``fields`` with a value of ``None`` are left out)."""
        record: dict[str, Any] = {"ts": _now(), "level": level, "event": event}
        record["run_id"], record["flow_id"] = self.dag_run_id, self.flow_id
        if task_id is not None:
            record["task_id"] = task_id
        for key, value in fields.items():
            if value is not None:
                record[key] = self.scrub(value) if isinstance(value, str) else value
        if event != "statement":  # the SQL files hold the statements
            self._write(record)
        number = _LEVELS.get(level, logging.INFO)
        if log.isEnabledFor(number):
            log.log(number, "%s", _text(record), extra={"qarion": record})
        self.inner.event(record)

    def _write(self, record: dict[str, Any]) -> None:
        if self._broken:
            return
        with self._lock:
            try:
                if self._file is None:
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(_text(record) + "\n")
                self._file.flush()
            except OSError:
                self._broken = True  # a full or read-only disk never fails the run

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # --- the Reporter calls ----------------------------------------------------------------
    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        self.emit("run_start", batch_id=batch_id, tasks=len(task_ids))
        self.inner.run_started(flow_id, dag_run_id, batch_id, task_ids)

    def task_started(self, task_id: str, try_number: int) -> None:
        self.emit("task_start", task_id=task_id, try_number=try_number)
        self.inner.task_started(task_id, try_number)

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        self.emit(
            "task_retry",
            "warning",
            task_id,
            try_number=try_number,
            error=error,
            delay_seconds=delay,
        )
        self.inner.task_retrying(task_id, try_number, error, delay)

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        now = time.monotonic()
        if now - self._progress_at.get(task_id, 0.0) >= PROGRESS_EVERY:
            self._progress_at[task_id] = now
            self._emit_progress(task_id, rows, fraction, rows_per_second)
        self.inner.task_progress(task_id, rows, fraction, rows_per_second)

    def _emit_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        self.emit(
            "task_progress",
            task_id=task_id,
            rows=rows,
            fraction=None if fraction is None else round(fraction, 4),
            rows_per_second=None if rows_per_second is None else round(rows_per_second, 1),
        )

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        failed = outcome.status == TaskStatus.FAILED
        self.emit(
            "task_failure" if failed else "task_end",
            "error" if failed else "info",
            outcome.task_id,
            status=str(outcome.status),
            try_number=outcome.tries or None,
            rows=outcome.rows,
            duration_seconds=outcome.duration_seconds,
            error=outcome.error,
            sql_path=outcome.sql_path,
        )
        for check in outcome.checks or []:
            if check.get("status") == "warn":  # a failed one is in the task's error
                self.emit(
                    "check_warning",
                    "warning",
                    outcome.task_id,
                    check=check.get("name"),
                    failing=check.get("failing"),
                    note=check.get("note"),
                )
        self.inner.task_finished(outcome, index, total)

    def run_finished(self, result: RunResult) -> None:
        self.emit(
            "run_end",
            "info" if result.ok else "error",
            status=str(result.status),
            counts={str(k): v for k, v in result.counts().items()},
            duration_seconds=result.duration_seconds,
        )
        self.close()
        self.inner.run_finished(result)

    def event(self, record: dict[str, Any]) -> None:
        self.inner.event(record)


def _text(record: dict[str, Any]) -> str:
    """One event as a line of ``run.log`` (an error's other lines indented below it)."""
    skip = {"ts", "level", "event", "run_id", "flow_id", "task_id", "error"}
    head = f"{record['ts']} {record['level'].upper():<7} {record['event']}"
    if "task_id" in record:
        head += f" task={record['task_id']}"
    head += "".join(f" {k}={v}" for k, v in record.items() if k not in skip)
    error = record.get("error")
    if error:
        first, _, rest = str(error).partition("\n")
        head += f" error={first}"
        head += "".join(f"\n    {line}" for line in rest.splitlines())
    return visible(head)  # data's control characters shown, as on a terminal


class TrySql:
    """The statements of one try of a task, appended to ``<task_id>.sql`` as they run.

    ``on_statement(sql, seconds, error)`` hears of each one when it ends (``-v``).
    """

    def __init__(
        self,
        path: Path,
        header: str,
        scrub: Callable[[str], str],
        on_statement: Callable[[str, float, BaseException | None], None] | None = None,
    ) -> None:
        self.path = path
        self.scrub = scrub
        self.on_statement = on_statement
        self._sql = ""
        self.statements = 0  # how many this try ran
        self._file: IO[str] | None = None
        try:
            self._file = path.open("a", encoding="utf-8")
            self._file.write(f"-- {header}\n")
        except OSError:
            self._file = None  # the run goes on without its SQL file

    def started(self, sql: str, params: Sequence[Any] | None) -> None:
        self._sql = sql
        self.statements += 1
        if self._file is None:
            return
        text = self.scrub(sql.rstrip().rstrip(";"))
        shown = f"\n-- {_now()[11:]}\n{text};\n"
        if params:
            shown += f"-- parameters: {self.scrub(repr(tuple(params)))[:500]}\n"
        try:
            self._file.write(shown)
        except OSError:
            self._file = None

    def finished(self, seconds: float, error: BaseException | None) -> None:
        if self._file is not None:
            if error is None:
                line = f"-- ok in {seconds:.3f} s\n"
            else:
                first = str(getattr(error, "orig", None) or error).strip() or type(error).__name__
                said = visible(self.scrub(first.splitlines()[0]))
                line = f"-- failed after {seconds:.3f} s: {said}\n"
            try:
                self._file.write(line)
            except OSError:
                self._file = None
        if self.on_statement is not None and not self._sql.startswith("--"):
            self.on_statement(self._sql, seconds, error)

    def note(self, text: str) -> None:
        if self._file is not None:
            try:
                self._file.write(f"-- {visible(self.scrub(text))}\n")
            except OSError:
                self._file = None

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
