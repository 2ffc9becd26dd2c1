"""Run history in the metadata database: runs, task instances and the batch sequence.

Three tables, named after ``[metadata].namespace`` (``qarion_runs``,
``qarion_task_instances``, ``qarion_batches``), created on first use with SQLAlchemy Core
so they work on SQLite, PostgreSQL and MySQL/MariaDB alike. ``allocate_batch_id`` bumps a
per-flow counter inside one transaction (an ``UPDATE … SET last = last + 1`` takes the
row lock), so concurrent runs, even from other machines sharing the database, get
distinct batch ids.

While a run executes, its ``summary`` column holds its owner (host, pid and the process's
start time). A ``running`` run whose owner is gone from this host (killed with SIGKILL, a
lost machine is not detectable) reads as ``abandoned``: ``runs list`` shows it so, and
``run --resume`` accepts it, while a run whose owner is alive is refused.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from qarion_etl.db_service import DatabaseService
from qarion_etl.errors import UsageError

_ID = 250
RUNNING = "running"
ABANDONED = "abandoned"


def _start_ticks(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' where unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def current_owner() -> dict[str, Any]:
    """This process as the owner of a run: host, pid and start time (against pid reuse)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": _start_ticks(os.getpid()),
    }


def owner_alive(owner: dict[str, Any]) -> bool | None:
    """Whether the process that owns a run still runs (``None``: on another host, unknown)."""
    if owner.get("host") != socket.gethostname():
        return None
    pid = int(owner.get("pid") or 0)
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = owner.get("pid_start")
    return not started or _start_ticks(pid) in ("", started)


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


class RunStore:
    """Runs, task instances and batch ids of one project's metadata database."""

    def __init__(self, db: DatabaseService, namespace: str = "qarion") -> None:
        self.db = db
        md = sa.MetaData()
        self.runs = sa.Table(
            f"{namespace}_runs",
            md,
            sa.Column("dag_run_id", sa.String(_ID), primary_key=True),
            sa.Column("flow_id", sa.String(_ID), nullable=False, index=True),
            sa.Column("batch_id", sa.BigInteger, nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("started_at", sa.String(40), nullable=False),
            sa.Column("ended_at", sa.String(40)),
            sa.Column("summary", sa.Text),
        )
        self.ti_table = sa.Table(
            f"{namespace}_task_instances",
            md,
            sa.Column("dag_run_id", sa.String(_ID), primary_key=True),
            sa.Column("task_id", sa.String(_ID), primary_key=True),
            sa.Column("flow_id", sa.String(_ID), nullable=False),
            sa.Column("batch_id", sa.BigInteger, nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("try_number", sa.Integer, nullable=False, default=0),
            sa.Column("started_at", sa.String(40)),
            sa.Column("ended_at", sa.String(40)),
            sa.Column("rows", sa.BigInteger),
            sa.Column("error", sa.Text),
            sa.Column("xcom_keys", sa.Text),
        )
        self.batches = sa.Table(
            f"{namespace}_batches",
            md,
            sa.Column("flow_id", sa.String(_ID), primary_key=True),
            sa.Column("last_batch_id", sa.BigInteger, nullable=False),
        )
        self._metadata = md
        self._created = False

    def create_tables(self) -> None:
        """Create the tables if they do not exist (safe to call from several processes)."""
        if self._created:
            return
        self.db.create_all(self._metadata)
        self._created = True

    # --- batches -----------------------------------------------------------------
    def allocate_batch_id(self, flow_id: str, requested: int | None = None) -> int:
        """The next batch id of ``flow_id``; with ``requested``, use it and move the sequence past it."""
        self.create_tables()
        b = self.batches
        for _ in range(10):
            with self.db.begin() as conn:
                if requested is None:
                    stmt = (
                        sa.update(b)
                        .where(b.c.flow_id == flow_id)
                        .values(last_batch_id=b.c.last_batch_id + 1)
                    )
                else:
                    stmt = (
                        sa.update(b)
                        .where(b.c.flow_id == flow_id, b.c.last_batch_id < requested)
                        .values(last_batch_id=requested)
                    )
                if conn.execute(stmt).rowcount:
                    return (
                        requested
                        if requested is not None
                        else int(
                            conn.execute(
                                sa.select(b.c.last_batch_id).where(b.c.flow_id == flow_id)
                            ).scalar_one()
                        )
                    )
                exists = conn.execute(
                    sa.select(b.c.last_batch_id).where(b.c.flow_id == flow_id)
                ).first()
                if exists is not None and requested is not None:
                    return requested
            if exists is not None:
                continue  # the row appeared between our UPDATE and SELECT: bump it again
            try:
                with self.db.begin() as conn:
                    conn.execute(sa.insert(b).values(flow_id=flow_id, last_batch_id=requested or 1))
                return requested or 1
            except sa.exc.IntegrityError:
                continue  # another run created the row first: update it instead
        raise RuntimeError(f"could not allocate a batch id for flow '{flow_id}'")

    # --- runs --------------------------------------------------------------------
    def start_run(self, dag_run_id: str, flow_id: str, batch_id: int, started_at: str) -> None:
        self.create_tables()
        r = self.runs
        try:
            with self.db.begin() as conn:
                conn.execute(
                    sa.insert(r).values(
                        dag_run_id=dag_run_id,
                        flow_id=flow_id,
                        batch_id=batch_id,
                        status=RUNNING,
                        started_at=started_at,
                        summary=_owner_json(),
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise UsageError(
                f"a run with id '{dag_run_id}' already exists "
                f"(use --resume {dag_run_id} or --task to add to it)"
            ) from exc

    def reopen_run(self, dag_run_id: str) -> None:
        r = self.runs
        with self.db.begin() as conn:
            conn.execute(
                sa.update(r)
                .where(r.c.dag_run_id == dag_run_id)
                .values(status=RUNNING, ended_at=None, summary=_owner_json())
            )

    def finish_run(
        self, dag_run_id: str, status: str, ended_at: str, summary: dict[str, Any] | None = None
    ) -> None:
        r = self.runs
        with self.db.begin() as conn:
            conn.execute(
                sa.update(r)
                .where(r.c.dag_run_id == dag_run_id)
                .values(
                    status=status,
                    ended_at=ended_at,
                    summary=json.dumps(summary, default=str) if summary else None,
                )
            )

    def get_run(self, dag_run_id: str) -> RunRecord | None:
        self.create_tables()
        with self.db.connect() as conn:
            row = (
                conn.execute(sa.select(self.runs).where(self.runs.c.dag_run_id == dag_run_id))
                .mappings()
                .first()
            )
        return _run(row) if row else None

    def list_runs(self, flow_id: str | None = None, limit: int = 20) -> list[RunRecord]:
        self.create_tables()
        r = self.runs
        stmt = sa.select(r).order_by(r.c.started_at.desc()).limit(limit)
        if flow_id:
            stmt = stmt.where(r.c.flow_id == flow_id)
        with self.db.connect() as conn:
            return [_run(row) for row in conn.execute(stmt).mappings()]

    # --- task instances ----------------------------------------------------------
    def record_task(self, ti: TaskInstanceRecord) -> None:
        """Insert or replace the task instance ``(dag_run_id, task_id)``."""
        t = self.ti_table
        values = {
            "dag_run_id": ti.dag_run_id,
            "task_id": ti.task_id,
            "flow_id": ti.flow_id,
            "batch_id": ti.batch_id,
            "status": ti.status,
            "try_number": ti.try_number,
            "started_at": ti.started_at,
            "ended_at": ti.ended_at,
            "rows": ti.rows,
            "error": ti.error,
            "xcom_keys": json.dumps(ti.xcom_keys),
        }
        with self.db.begin() as conn:
            where = sa.and_(t.c.dag_run_id == ti.dag_run_id, t.c.task_id == ti.task_id)
            if not conn.execute(sa.update(t).where(where).values(values)).rowcount:
                conn.execute(sa.insert(t).values(values))

    def task_instances(self, dag_run_id: str) -> list[TaskInstanceRecord]:
        self.create_tables()
        t = self.ti_table
        with self.db.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(t)
                    .where(t.c.dag_run_id == dag_run_id)
                    .order_by(sa.func.coalesce(t.c.started_at, t.c.ended_at, "~"), t.c.task_id)
                )
                .mappings()
                .all()
            )
        return [_ti(row) for row in rows]

    def last_success_run_of_task(
        self, flow_id: str, task_id: str, before: str | None = None
    ) -> str | None:
        """The newest run of ``flow_id`` in which ``task_id`` succeeded."""
        self.create_tables()
        t = self.ti_table
        stmt = (
            sa.select(t.c.dag_run_id)
            .where(t.c.flow_id == flow_id, t.c.task_id == task_id, t.c.status == "success")
            .order_by(t.c.ended_at.desc())
            .limit(1)
        )
        with self.db.connect() as conn:
            return conn.execute(stmt).scalar()


def _owner_json() -> str:
    return json.dumps({"owner": current_owner()})


def _run(row: Any) -> RunRecord:
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


def _ti(row: Any) -> TaskInstanceRecord:
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
