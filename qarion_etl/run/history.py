"""Run history: runs, task instances and the batch sequence, and the results file.

Three tables in the metadata database, named after ``[metadata].namespace``
(``qarion_runs``, ``qarion_task_instances``, ``qarion_batches``), created on first use
(``db.schema``), so they work on SQLite, PostgreSQL and MySQL/MariaDB alike; the
statements are plain SQL with quoted names, run on either connection source. ``allocate_batch_id`` bumps a
per-flow counter inside one transaction (an ``UPDATE … SET last = last + 1`` takes the
row lock), so concurrent runs, even from other machines sharing the database, get
distinct batch ids.

While a run executes, its ``summary`` column holds its owner (host, pid and the process's
start time). A ``running`` run whose owner is gone from this host (killed with SIGKILL, a
lost machine is not detectable) reads as ``abandoned``: ``runs list`` shows it so, and
``run --resume`` accepts it, while a run whose owner is alive is refused.

``write_results`` writes ``.qarion/runs/<flow_id>/<dag_run_id>.json`` (dbt's
``run_results.json`` habit) at the end of every run, and after each task of a run an
orchestrator drives, merged with what the run's other tasks wrote.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qarion_etl.db.service import DatabaseService
from qarion_etl.errors import AmbiguousRun, RunExists, RunNotFound
from qarion_etl.run.history_schema import (
    plans_table,
    run_tables,
    tries_table,
    upgrade_first_layout,
)
from qarion_etl.run.model import (
    RunResult,
    RunStatus,
    TaskOutcome,
    TaskStatus,
    TryRecord,
    now_iso,
)
from qarion_etl.run.owner import current_owner, owner_alive

RUNNING = RunStatus.RUNNING
ABANDONED = RunStatus.ABANDONED


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of ``<namespace>_runs``."""

    dag_run_id: str
    flow_id: str
    batch_id: int
    status: str
    started_at: str
    ended_at: str | None
    summary: dict[str, Any] | None

    @property
    def duration_seconds(self) -> float | None:
        """How long the run worked: its parts added up when it was resumed (the idle time
        between a failure and its resume is not counted), else its start to its end."""
        worked = (self.summary or {}).get("duration_seconds")
        if isinstance(worked, int | float) and not isinstance(worked, bool):
            return float(worked)
        return _seconds(self.started_at, self.ended_at)

    @property
    def owner(self) -> dict[str, Any] | None:
        """The process executing the run (only while ``running``)."""
        owner = (self.summary or {}).get("owner") if self.status in (RUNNING, ABANDONED) else None
        return owner if isinstance(owner, dict) else None


@dataclass(frozen=True, slots=True)
class TaskInstanceRecord:
    """One row of ``<namespace>_task_instances``."""

    dag_run_id: str
    task_id: str
    flow_id: str
    batch_id: int
    status: str
    try_number: int
    started_at: str | None
    ended_at: str | None
    rows: int | None
    error: str | None
    xcom_keys: list[str]

    @classmethod
    def of(
        cls, o: TaskOutcome, dag_run_id: str, flow_id: str, batch_id: int, status: str
    ) -> TaskInstanceRecord:
        """The record of a task's outcome in run ``dag_run_id``, with ``status``."""
        return cls(
            dag_run_id, o.task_id, flow_id, batch_id, status, o.tries, o.started_at,
            o.ended_at, o.rows, o.error, o.xcom_keys,
        )  # fmt: skip


_RUN_COLS = ("dag_run_id", "flow_id", "batch_id", "status", "started_at", "ended_at", "summary")
_TI_COLS = (
    "dag_run_id", "task_id", "flow_id", "batch_id", "status", "try_number",
    "started_at", "ended_at", "rows", "error", "xcom_keys",
)  # fmt: skip
_TRY_COLS = (
    "flow_id", "dag_run_id", "task_id", "try_number", "status", "started_at", "ended_at", "error",
)  # fmt: skip


class RunStore:
    """Runs, task instances and batch ids of one project's metadata database."""

    def __init__(self, db: DatabaseService, namespace: str = "qarion") -> None:
        self.db = db
        self.specs = run_tables(namespace)
        self.tries_spec = tries_table(namespace)
        self.plans_spec = plans_table(namespace)
        self._tries = db.quote(self.tries_spec.name)
        runs, tis, batches = (db.quote(t.name) for t in self.specs)
        q = db.quote
        self._runs, self._tis, self._batches = runs, tis, batches
        self._run_cols = ", ".join(q(c) for c in _RUN_COLS)
        self._ti_cols = ", ".join(q(c) for c in _TI_COLS)
        self._created = False

    def create_tables(self) -> None:
        """Create the tables if they do not exist (safe to call from several processes).

        One look at the catalog when they all exist: the plans table is the newest, so a
        database that has it was written in the current layout.
        """
        if self._created:
            return
        specs = [*self.specs, self.tries_spec, self.plans_spec]
        if not {s.name for s in specs} <= self.db.known_tables():
            upgrade_first_layout(self.db, self.specs)  # before: it frees the old index names
            self.db.create_tables(specs)
        self._created = True

    def drop_tables(self) -> None:
        """Drop the tables (for tests and tools that clean up after themselves)."""
        self.create_tables()  # a first-layout database is upgraded (nothing is left behind)
        with self.db.begin() as conn:
            for t in (*self.specs, self.tries_spec, self.plans_spec):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.db.quote(t.name)}")
        self.db.forget_tables(t.name for t in (*self.specs, self.tries_spec, self.plans_spec))
        self._created = False

    # --- batches -----------------------------------------------------------------
    def allocate_batch_id(self, flow_id: str, requested: int | None = None) -> int:
        """The next batch id of ``flow_id``; with ``requested``, use it and move the sequence past it."""
        self.create_tables()
        for _ in range(10):
            try:
                with self.db.begin() as conn:
                    return self._bump_batch(conn, flow_id, requested)
            except Exception as exc:
                if self.db.is_integrity_error(exc) or self.db.is_conflict(exc):
                    continue  # another run created the flow's row first: bump it instead
                raise
        raise RuntimeError(f"could not allocate a batch id for flow '{flow_id}'")

    def _bump_batch(self, conn: Any, flow_id: str, requested: int | None) -> int:
        """Inside the caller's transaction: the flow's next batch id (or ``requested``).

        The ``UPDATE`` takes the row lock, so concurrent callers get distinct ids; the
        first caller of a flow inserts its row, and a second one racing it fails with an
        integrity error (the caller's transaction rolls back and tries again).
        """
        b = self._batches
        last, flow = self.db.quote("last_batch_id"), self.db.quote("flow_id")
        select = self.db.sql(f"SELECT {last} FROM {b} WHERE {flow} = ?")
        if requested is None:
            changed = conn.exec_driver_sql(
                self.db.sql(f"UPDATE {b} SET {last} = {last} + 1 WHERE {flow} = ?"), (flow_id,)
            ).rowcount
            if changed:
                return int(conn.exec_driver_sql(select, (flow_id,)).scalar_one())
        else:
            conn.exec_driver_sql(
                self.db.sql(f"UPDATE {b} SET {last} = ? WHERE {flow} = ? AND {last} < ?"),
                (requested, flow_id, requested),
            )
            if conn.exec_driver_sql(select, (flow_id,)).first() is not None:
                return requested
        conn.exec_driver_sql(
            self.db.sql(f"INSERT INTO {b} ({flow}, {last}) VALUES (?, ?)"),
            (flow_id, requested or 1),
        )
        return requested or 1

    # --- runs --------------------------------------------------------------------
    def open_run(
        self,
        dag_run_id: str,
        flow_id: str,
        started_at: str,
        *,
        batch_id: int | None = None,
        owned: bool = True,
        join: bool = False,
    ) -> tuple[RunRecord, bool]:
        """Record a new run with the flow's next batch id; its record and whether it is new.

        The batch id is drawn in the transaction that records the run, so when several
        processes start one run at once (the first tasks of an Airflow DAG run), the ones
        that lose the race roll their draw back and join the winner's run: consecutive
        runs get consecutive batch ids.

        Args:
            batch_id: use this batch id (``--batch-id``) instead of the next one.
            owned: record this process as the run's owner (see ``start_run``).
            join: return the existing run instead of refusing when it exists.

        Raises:
            RunExists: the run exists (and ``join`` is off).
        """
        self.create_tables()
        summary = _owner_json() if owned else None
        insert = self.db.sql(
            f"INSERT INTO {self._runs} ({self._run_cols}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        for _ in range(20):
            existing = self.get_run(dag_run_id, flow_id)
            if existing is not None:
                if not join:
                    raise RunExists(flow_id, dag_run_id)
                return existing, False
            try:
                with self.db.begin() as conn:
                    batch = self._bump_batch(conn, flow_id, batch_id)
                    row = (dag_run_id, flow_id, batch, str(RUNNING), started_at, None, summary)
                    conn.exec_driver_sql(insert, row)
            except Exception as exc:
                if self.db.is_integrity_error(exc) or self.db.is_conflict(exc):
                    continue  # another process recorded the run (or the flow's batch row)
                raise
            return RunRecord(dag_run_id, flow_id, batch, RUNNING, started_at, None, None), True
        raise RuntimeError(f"could not record run '{dag_run_id}' of flow '{flow_id}'")

    def start_run(
        self,
        dag_run_id: str,
        flow_id: str,
        batch_id: int,
        started_at: str,
        *,
        owned: bool = True,
    ) -> RunRecord:
        """Record a new run with a batch id the caller allocated.

        Args:
            owned: record this process as the run's owner (a run an orchestrator drives has
                none: its tasks run in other processes and it is never "abandoned").

        Raises:
            RunExists: the run exists.
        """
        self.create_tables()
        summary = _owner_json() if owned else None
        try:
            with self.db.begin() as conn:
                conn.exec_driver_sql(
                    self.db.sql(
                        f"INSERT INTO {self._runs} ({self._run_cols}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (dag_run_id, flow_id, batch_id, str(RUNNING), started_at, None, summary),
                )
        except Exception as exc:
            if self.db.is_integrity_error(exc):
                raise RunExists(flow_id, dag_run_id) from exc
            raise
        return RunRecord(dag_run_id, flow_id, batch_id, RUNNING, started_at, None, None)

    def _update_run(
        self,
        flow_id: str,
        dag_run_id: str,
        status: str,
        ended_at: str | None,
        summary: str | None,
    ) -> None:
        q = self.db.quote
        sql = self.db.sql(
            f"UPDATE {self._runs} SET {q('status')} = ?, {q('ended_at')} = ?, "
            f"{q('summary')} = ? WHERE {q('flow_id')} = ? AND {q('dag_run_id')} = ?"
        )

        def write() -> None:
            with self.db.begin() as conn:
                conn.exec_driver_sql(sql, (str(status), ended_at, summary, flow_id, dag_run_id))

        self.db.retry_conflicts(write)

    def reopen_run(
        self, flow_id: str, dag_run_id: str, *, owned: bool = True, worked: float | None = None
    ) -> None:
        """Mark a run running again (resumed, or joined by another task of it).

        Args:
            worked: seconds the run worked before, kept so its duration adds its parts.
        """
        summary: dict[str, Any] = {"owner": current_owner()} if owned else {}
        if worked is not None:
            summary["duration_seconds"] = worked
        self._update_run(
            flow_id, dag_run_id, RUNNING, None, json.dumps(summary) if summary else None
        )

    def finish_run(
        self,
        flow_id: str,
        dag_run_id: str,
        status: str,
        ended_at: str | None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        text = json.dumps(summary, default=str) if summary else None
        self._update_run(flow_id, dag_run_id, status, ended_at, text)

    def settle_run(self, flow_id: str, dag_run_id: str, task_ids: list[str]) -> str:
        """Set the status of a run whose tasks run in other processes, from its task instances.

        ``failed`` once a task failed (a retry that succeeds settles it again), ``success``
        when every task of the flow succeeded, else ``running``. The run's row is locked
        while its task instances are read, so two tasks finishing at once cannot leave the
        status of the one that read first. Returns the status.
        """
        q = self.db.quote
        where = f"WHERE {q('flow_id')} = ? AND {q('dag_run_id')} = ?"
        lock = self.db.sql(
            f"SELECT {q('status')} FROM {self._runs} {where}{self.db.dialect.locking_read}"
        )
        read = self.db.sql(f"SELECT {q('task_id')}, {q('status')} FROM {self._tis} {where}")
        update = self.db.sql(
            f"UPDATE {self._runs} SET {q('status')} = ?, {q('ended_at')} = ?, {q('summary')} = ? {where}"
        )
        finals = (TaskStatus.FAILED, TaskStatus.INTERRUPTED, TaskStatus.SKIPPED)

        def settle() -> str:
            with self.db.begin() as conn:
                conn.exec_driver_sql(lock, (flow_id, dag_run_id)).fetchall()
                rows = conn.exec_driver_sql(read, (flow_id, dag_run_id)).fetchall()
                tis = {str(r[0]): str(r[1]) for r in rows}
                if any(s in finals for s in tis.values()):
                    status: str = RunStatus.FAILED
                elif all(tis.get(t) == TaskStatus.SUCCESS for t in task_ids):
                    status = RunStatus.SUCCESS
                else:
                    status = RunStatus.RUNNING
                ended = now_iso() if status != RunStatus.RUNNING else None
                summary = json.dumps({"tasks": len(tis)})
                conn.exec_driver_sql(update, (str(status), ended, summary, flow_id, dag_run_id))
            return status

        return self.db.retry_conflicts(settle)

    def find_run(self, run_id: str, flow_id: str | None = None) -> RunRecord:
        """The run ``run_id`` (``latest``: the newest, of ``flow_id`` if given).

        Raises:
            RunNotFound: there is no such run (or no run yet).
        """
        if run_id == "latest":
            newest = self.list_runs(flow_id, limit=1)
            if not newest:
                raise RunNotFound("latest", flow_id)
            return newest[0]
        run = self.get_run(run_id, flow_id)
        if run is None:
            raise RunNotFound(run_id, flow_id)
        return run

    def get_run(self, dag_run_id: str, flow_id: str | None = None) -> RunRecord | None:
        """The run ``dag_run_id`` (of ``flow_id``; without it, of the one flow that has it).

        Raises:
            AmbiguousRun: no flow is given and several flows have a run with this id.
        """
        found = self.runs_with_id(dag_run_id, flow_id)
        if len(found) > 1:
            raise AmbiguousRun(dag_run_id, (r.flow_id for r in found))
        return found[0] if found else None

    def runs_with_id(self, dag_run_id: str, flow_id: str | None = None) -> list[RunRecord]:
        """Every run with the id ``dag_run_id`` (one per flow at most)."""
        self.create_tables()
        q = self.db.quote
        where = f"{q('dag_run_id')} = ?" + (f" AND {q('flow_id')} = ?" if flow_id else "")
        params = (dag_run_id, flow_id) if flow_id else (dag_run_id,)
        with self.db.connect() as conn:
            rows = conn.exec_driver_sql(
                self.db.sql(f"SELECT {self._run_cols} FROM {self._runs} WHERE {where}"), params
            ).fetchall()
        return [_run(row) for row in rows]

    def list_runs(
        self, flow_id: str | None = None, limit: int = 20, status: str | None = None
    ) -> list[RunRecord]:
        """Runs, newest first (of ``flow_id``; with ``status``, only those in it).

        ``abandoned`` is no stored status (a ``running`` run whose process is gone reads
        so): filtering by it, or by ``running``, reads the running runs and tells them apart.
        """
        self.create_tables()
        q = self.db.quote
        where, params = self._run_filter(flow_id, status)
        live = status in (RUNNING, ABANDONED)
        sql = (
            f"SELECT {self._run_cols} FROM {self._runs}{where} ORDER BY {q('started_at')} DESC"
            + ("" if live else f" LIMIT {max(0, int(limit))}")
        )
        with self.db.connect() as conn:
            rows = conn.exec_driver_sql(self.db.sql(sql), params).fetchall()
        runs = [_run(row) for row in rows]
        if live:
            runs = [r for r in runs if r.status == status][: max(0, int(limit))]
        return runs

    def count_runs(self, flow_id: str | None = None, status: str | None = None) -> int:
        """How many runs ``list_runs`` could list with these filters and no limit."""
        if status in (RUNNING, ABANDONED):
            return len(self.list_runs(flow_id, limit=10**9, status=status))
        self.create_tables()
        where, params = self._run_filter(flow_id, status)
        with self.db.connect() as conn:
            sql = f"SELECT COUNT(*) FROM {self._runs}{where}"
            return int(conn.exec_driver_sql(self.db.sql(sql), params).scalar() or 0)

    def _run_filter(self, flow_id: str | None, status: str | None) -> tuple[str, tuple[str, ...]]:
        """The WHERE clause and parameters of runs of ``flow_id`` in ``status``."""
        q = self.db.quote
        conds, params = [], []
        if flow_id:
            conds.append(f"{q('flow_id')} = ?")
            params.append(flow_id)
        if status:
            conds.append(f"{q('status')} = ?")
            params.append(RUNNING if status == ABANDONED else status)
        return (f" WHERE {' AND '.join(conds)}" if conds else ""), tuple(params)

    def task_counts(self, runs: Sequence[RunRecord]) -> dict[tuple[str, str], dict[str, int]]:
        """For each of ``runs``: how many of its tasks are in each status."""
        if not runs:
            return {}
        self.create_tables()
        q = self.db.quote
        flows = sorted({r.flow_id for r in runs})
        ids = sorted({r.dag_run_id for r in runs})
        sql = (
            f"SELECT {q('flow_id')}, {q('dag_run_id')}, {q('status')}, COUNT(*) FROM {self._tis} "
            f"WHERE {q('flow_id')} IN ({', '.join('?' * len(flows))}) "
            f"AND {q('dag_run_id')} IN ({', '.join('?' * len(ids))}) "
            f"GROUP BY {q('flow_id')}, {q('dag_run_id')}, {q('status')}"
        )
        out: dict[tuple[str, str], dict[str, int]] = {(r.flow_id, r.dag_run_id): {} for r in runs}
        with self.db.connect() as conn:
            for flow, run, status, n in conn.exec_driver_sql(
                self.db.sql(sql), (*flows, *ids)
            ).fetchall():
                if (flow, run) in out:
                    out[(flow, run)][str(status)] = int(n)
        return out

    # --- task instances ----------------------------------------------------------
    def record_task(self, ti: TaskInstanceRecord) -> None:
        """Insert or replace the task instance ``(flow_id, dag_run_id, task_id)``.

        One upsert: tasks of one run record themselves at the same moment from several
        processes, and an UPDATE-then-INSERT would take gap locks that deadlock on InnoDB.
        The stored row is replaced only by a record of the same try or a newer one (or of
        no try: skipped, not run): a try an orchestrator gave up on, still running in an
        orphaned process, cannot overwrite the record of the try that replaced it.
        """
        q = self.db.quote
        values = (
            ti.dag_run_id, ti.task_id, ti.flow_id, ti.batch_id, str(ti.status), ti.try_number,
            ti.started_at, ti.ended_at, ti.rows, ti.error, json.dumps(ti.xcom_keys),
        )  # fmt: skip
        insert = (
            f"INSERT INTO {self._tis} ({self._ti_cols}) VALUES ({', '.join('?' * len(_TI_COLS))})"
        )
        key = ", ".join(q(c) for c in ("flow_id", "dag_run_id", "task_id"))
        sql = self.db.sql(
            self.db.dialect.upsert(
                insert,
                key,
                [q(c) for c in _TI_COLS[3:]],
                table=self._tis,
                not_older=q("try_number"),
            )
        )

        def write() -> None:
            with self.db.begin() as conn:
                conn.exec_driver_sql(sql, values)

        self.db.retry_conflicts(write)

    def current_try(self, flow_id: str, dag_run_id: str, task_id: str) -> int | None:
        """The newest try of the task recorded in the run (``None``: no record yet)."""
        q = self.db.quote
        sql = self.db.sql(
            f"SELECT {q('try_number')} FROM {self._tis} WHERE {q('flow_id')} = ? "
            f"AND {q('dag_run_id')} = ? AND {q('task_id')} = ?"
        )
        with self.db.connect() as conn:
            found = conn.exec_driver_sql(sql, (flow_id, dag_run_id, task_id)).scalar()
        return None if found is None else int(found)

    def record_try(self, flow_id: str, dag_run_id: str, task_id: str, attempt: TryRecord) -> None:
        """Keep one try of a task, the moment it ends (a crash later loses none of them)."""
        q = self.db.quote
        insert = f"INSERT INTO {self._tries} ({', '.join(q(c) for c in _TRY_COLS)}) VALUES ({', '.join('?' * len(_TRY_COLS))})"
        key = ", ".join(q(c) for c in _TRY_COLS[:4])
        sql = self.db.sql(self.db.dialect.upsert(insert, key, [q(c) for c in _TRY_COLS[4:]]))
        values = (
            flow_id, dag_run_id, task_id, attempt.try_number, str(attempt.status),
            attempt.started_at, attempt.ended_at, attempt.error,
        )  # fmt: skip

        def write() -> None:
            with self.db.begin() as conn:
                conn.exec_driver_sql(sql, values)

        self.db.retry_conflicts(write)

    def tries(self, flow_id: str, dag_run_id: str) -> dict[str, list[TryRecord]]:
        """The kept tries of each task of a run (see ``record_try``), by task, in order."""
        self.create_tables()
        q = self.db.quote
        sql = (
            f"SELECT {q('task_id')}, {q('try_number')}, {q('status')}, {q('started_at')}, "
            f"{q('ended_at')}, {q('error')} FROM {self._tries} WHERE {q('flow_id')} = ? "
            f"AND {q('dag_run_id')} = ? ORDER BY {q('task_id')}, {q('try_number')}"
        )
        with self.db.connect() as conn:
            rows = conn.exec_driver_sql(self.db.sql(sql), (flow_id, dag_run_id)).fetchall()
        out: dict[str, list[TryRecord]] = {}
        for task_id, number, status, started, ended, error in rows:
            out.setdefault(str(task_id), []).append(
                TryRecord(int(number), str(status), started, ended, error)
            )
        return out

    def task_instances(self, flow_id: str, dag_run_id: str) -> list[TaskInstanceRecord]:
        q = self.db.quote
        order = f"COALESCE({q('started_at')}, {q('ended_at')}, '~'), {q('task_id')}"
        return self._select_tis("dag_run_id", (flow_id, dag_run_id), order)

    def task_history(self, flow_id: str, task_id: str, limit: int = 50) -> list[TaskInstanceRecord]:
        """``task_id``'s instances in the runs of ``flow_id``, newest first."""
        q = self.db.quote
        order = f"COALESCE({q('started_at')}, {q('ended_at')}, '') DESC LIMIT {max(0, int(limit))}"
        return self._select_tis("task_id", (flow_id, task_id), order)

    def runs_task_instances(
        self, flow_id: str, dag_run_ids: Sequence[str]
    ) -> list[TaskInstanceRecord]:
        """The task instances of the runs ``dag_run_ids`` of ``flow_id`` (runs × tasks)."""
        if not dag_run_ids:
            return []
        self.create_tables()
        q = self.db.quote
        sql = (
            f"SELECT {self._ti_cols} FROM {self._tis} WHERE {q('flow_id')} = ? "
            f"AND {q('dag_run_id')} IN ({', '.join('?' * len(dag_run_ids))})"
        )
        with self.db.connect() as conn:
            rows = conn.exec_driver_sql(self.db.sql(sql), (flow_id, *dag_run_ids)).fetchall()
        return [_ti(row) for row in rows]

    def _select_tis(
        self, column: str, params: tuple[str, str], order: str
    ) -> list[TaskInstanceRecord]:
        """Task instances of flow ``params[0]`` whose ``column`` is ``params[1]``."""
        self.create_tables()
        q = self.db.quote
        sql = (
            f"SELECT {self._ti_cols} FROM {self._tis} WHERE {q('flow_id')} = ? "
            f"AND {q(column)} = ? ORDER BY {order}"
        )
        with self.db.connect() as conn:
            rows = conn.exec_driver_sql(self.db.sql(sql), params).fetchall()
        return [_ti(row) for row in rows]

    # --- plans -------------------------------------------------------------------------
    def save_plan(self, flow_id: str, dag_run_id: str, plan: dict[str, Any]) -> bool:
        """Keep what run ``dag_run_id`` set out to execute (``run.plans.plan_of``).

        The first plan of a run stays: the first tasks of an Airflow run record it from
        several processes at once, and a resumed run keeps the plan it started with.
        Returns whether this call stored it.
        """
        self.create_tables()
        q = self.db.quote
        cols = ", ".join(q(c) for c in self.plans_spec.column_names)
        sql = self.db.sql(f"INSERT INTO {q(self.plans_spec.name)} ({cols}) VALUES (?, ?, ?, ?)")
        text = json.dumps(plan, default=str, sort_keys=True)
        try:
            with self.db.begin() as conn:
                conn.exec_driver_sql(sql, (flow_id, dag_run_id, now_iso(), text))
        except Exception as exc:
            if self.db.is_integrity_error(exc):
                return False
            raise
        return True

    def run_plan(self, flow_id: str, dag_run_id: str) -> dict[str, Any] | None:
        """The plan ``save_plan`` kept for the run (``None`` for a run from before plans)."""
        self.create_tables()
        q = self.db.quote
        sql = self.db.sql(
            f"SELECT {q('plan')} FROM {q(self.plans_spec.name)} "
            f"WHERE {q('flow_id')} = ? AND {q('dag_run_id')} = ?"
        )
        with self.db.connect() as conn:
            text = conn.exec_driver_sql(sql, (flow_id, dag_run_id)).scalar()
        if text is None:
            return None
        try:
            plan = json.loads(text)
        except ValueError:
            return None
        return plan if isinstance(plan, dict) else None

    def last_success_run_of_task(
        self, flow_id: str, task_id: str, before: str | None = None
    ) -> str | None:
        """The newest run of ``flow_id`` in which ``task_id`` succeeded."""
        self.create_tables()
        q = self.db.quote
        sql = (
            f"SELECT {q('dag_run_id')} FROM {self._tis} WHERE {q('flow_id')} = ? "
            f"AND {q('task_id')} = ? AND {q('status')} = '{TaskStatus.SUCCESS}' "
            f"ORDER BY {q('ended_at')} DESC LIMIT 1"
        )
        with self.db.connect() as conn:
            found = conn.exec_driver_sql(self.db.sql(sql), (flow_id, task_id)).scalar()
        return None if found is None else str(found)


def _owner_json() -> str:
    return json.dumps({"owner": current_owner()})


def _run(values: Any) -> RunRecord:
    row = dict(zip(_RUN_COLS, values, strict=True))
    summary = json.loads(row["summary"]) if row["summary"] else None
    status = row["status"]
    owner = (summary or {}).get("owner")
    if status == RUNNING and isinstance(owner, dict) and owner_alive(owner) is False:
        status = ABANDONED
    return RunRecord(
        row["dag_run_id"],
        row["flow_id"],
        int(row["batch_id"]),
        status,
        row["started_at"],
        row["ended_at"],
        summary,
    )


def _ti(values: Any) -> TaskInstanceRecord:
    row = dict(zip(_TI_COLS, values, strict=True))
    return TaskInstanceRecord(
        row["dag_run_id"],
        row["task_id"],
        row["flow_id"],
        int(row["batch_id"]),
        row["status"],
        int(row["try_number"] or 0),
        row["started_at"],
        row["ended_at"],
        None if row["rows"] is None else int(row["rows"]),
        row["error"],
        json.loads(row["xcom_keys"]) if row["xcom_keys"] else [],
    )


def write_results(result: RunResult, path: Path, *, merge: str | None = None) -> str | None:
    """Write the results file ``path`` atomically; returns its path (``None`` if unwritable).

    With ``merge`` (the run's settled status), ``result`` is one task of a run whose tasks
    run in other processes (Airflow): under a lock on the file, its tasks replace theirs in
    the file's document, every other task is kept, and the run takes the status ``merge``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = result.as_dict()
        if merge is None:
            _replace_file(path, doc)
            return str(path)
        with _locked(path.with_name(path.name + ".lock")):
            _replace_file(path, _merged(_read_doc(path), doc, merge))
        return str(path)
    except OSError:
        return None


def _merged(old: dict[str, Any] | None, new: dict[str, Any], status: str) -> dict[str, Any]:
    """The results document ``old`` with the tasks of ``new`` put in, and the run's ``status``."""
    if old is None or old.get("flow_id") != new["flow_id"]:
        old = {**new, "tasks": []}
    mine = {t["task_id"]: t for t in new["tasks"]}
    tasks = [mine.pop(t["task_id"], t) for t in old.get("tasks", []) if isinstance(t, dict)]
    tasks += mine.values()
    counts: dict[str, int] = {}
    for t in tasks:
        counts[str(t.get("status"))] = counts.get(str(t.get("status")), 0) + 1
    started = min(filter(None, (old.get("started_at"), new["started_at"])))
    ended = max(filter(None, (old.get("ended_at"), new["ended_at"])), default=None)
    return {
        **old,
        **{k: v for k, v in new.items() if k not in ("tasks", "counts")},
        "status": status,
        "started_at": started,
        "ended_at": ended if status != RunStatus.RUNNING else None,
        "duration_seconds": _seconds(started, ended),
        "tasks": tasks,
        "counts": counts,
    }


def _seconds(start: str | None, end: str | None) -> float | None:
    import datetime as dt

    if not start or not end:
        return None
    try:
        took = dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)
    except ValueError:
        return None
    return round(took.total_seconds(), 4)


def _read_doc(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none yet, or not ours: written anew
    return doc if isinstance(doc, dict) else None


def _replace_file(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON to ``path`` through a temporary file of this writer's own."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the file ``path`` for the block (between processes)."""
    with path.open("a") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one writer per run folder
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def all_tries(ti: TaskInstanceRecord, kept: list[TryRecord]) -> list[TryRecord]:
    """Every try of a task instance, in order: the kept ones, and its last one if not kept."""
    if any(a.try_number == ti.try_number for a in kept) or not ti.try_number:
        return list(kept)
    last = TryRecord(ti.try_number, ti.status, ti.started_at, ti.ended_at, ti.error)
    return [*kept, last]
