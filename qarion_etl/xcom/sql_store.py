"""The table store ``BaseXCom`` keeps values in: ``SqlXComStore`` (the table: ``table``).

``SqlXComStore`` upserts, finds the newest match, scans and deletes on one table of the
metadata database. Its statements are plain SQL with quoted names, built once per store in
the dialect's parameter style; they run on one dedicated connection per thread
(``DatabaseService.dedicated()``: native for SQLite files and DuckDB, from the SQLAlchemy
engine otherwise), held for the life of the backend, in autocommit mode (each upsert is its
own transaction) with the connection's ``begin()`` around batches. The table is created
once, on first use, by ``DatabaseService.create_tables``. A pull that names every identity
part reads the row by its primary key, so no database's planner can choose a slower index.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from qarion_etl.xcom.records import XComQuery, XComRecord, identity_key
from qarion_etl.xcom.table import table_spec

if TYPE_CHECKING:
    from qarion_etl.db.connection import DriverConnection
    from qarion_etl.db.service import DatabaseService

# In the order of XComRecord's fields, so a row builds a record positionally.
_COLUMNS = (
    "flow_id",
    "task_id",
    "key",
    "value",
    "value_type",
    "dag_run_id",
    "batch_id",
    "size",
    "pushed_ns",
)
_ALL_FILTERS = ("task_id", "key", "flow_id", "dag_run_id", "batch_id")
# The order of an upsert's parameters.
_ROW_ORDER = (
    "identity", "flow_id", "task_id", "key", "dag_run_id", "batch_id",
    "value_type", "value", "size", "pushed_ns", "created_at",
)  # fmt: skip


_EPOCH = _dt.datetime(1970, 1, 1)


class _SqliteStamp:
    """``created_at`` text as SQLAlchemy stores it on SQLite, cheap for many pushes per second."""

    __slots__ = ("second", "prefix")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self, pushed_ns: int) -> str:
        second, rest = divmod(pushed_ns, 1_000_000_000)
        if second != self.second:
            self.second = second
            self.prefix = (_EPOCH + _dt.timedelta(seconds=second)).isoformat(" ")
        return f"{self.prefix}.{rest // 1000:06d}"


_STORES: weakref.WeakSet[SqlXComStore] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for store in list(_STORES):
        store._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class SqlXComStore:
    """Storage of ``BaseXCom``: upsert, newest match, scan and delete on one table."""

    def __init__(self, db: DatabaseService, table_name: str) -> None:
        self.db = db
        self.spec = table_spec(table_name)
        self.dialect = db.dialect
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open: list[DriverConnection] = []
        self._pid = os.getpid()
        self._ready = False
        self._stmts: dict[Any, str] = {}
        self._stamp = _SqliteStamp() if self.dialect.datetime_as_text else None
        self._t = db.quote(table_name)
        self._q = {c: db.quote(c) for c in _ROW_ORDER}
        self._select = ", ".join(self._q[c] for c in _COLUMNS)
        _STORES.add(self)
        self._conn_errors: tuple[type[BaseException], ...] | None = None

    # --- connections -------------------------------------------------------------------
    def _after_fork(self) -> None:
        """In a forked child: the parent's connections are not ours to use or close."""
        self._pid = os.getpid()
        self._local = threading.local()
        self._open = []
        self._lock = threading.Lock()
        self.db.after_fork()

    def _errors(self) -> tuple[type[BaseException], ...]:
        if self._conn_errors is None:
            self._conn_errors = self.db.connection_errors()
        return self._conn_errors

    def _connection(self) -> tuple[DriverConnection, Any]:
        """This thread's connection and the cursor its statements run on."""
        held = getattr(self._local, "conn", None)
        if held is None:
            if not self._ready:
                self._create_table()
            conn = self.db.dedicated()
            held = (conn, self.dialect.cursor(conn.raw))
            self._local.conn = held
            self._local.depth = 0
            with self._lock:
                self._open.append(conn)
        return held

    def _drop_connection(self) -> None:
        held = getattr(self._local, "conn", None)
        self._local.conn = None
        self._local.depth = 0
        if held is not None:
            with self._lock:
                if held[0] in self._open:
                    self._open.remove(held[0])
            held[0].close()

    def close(self) -> None:
        """Close every connection this store opened (in this process)."""
        with self._lock:
            conns, self._open = self._open, []
        if os.getpid() == self._pid:
            for conn in conns:
                conn.close()
        self._local = threading.local()

    def _create_table(self) -> None:
        with self._lock:
            if not self._ready:
                self.db.create_tables([self.spec])  # safe when another process creates it too
                self._ready = True

    # --- execution ---------------------------------------------------------------------
    def _run(self, sql: str, params: Any, *, many: bool = False, fetch: str | None = None) -> Any:
        errors = self._conn_errors or self._errors()
        for attempt in (0, 1):
            local = self._local
            held = getattr(local, "conn", None)
            conn, cur = held if held is not None else self._connection()
            in_tx = local.depth > 0
            try:
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
                if fetch == "one":
                    return cur.fetchone()
                if fetch == "all":
                    return cur.fetchall()
                return cur.rowcount
            except errors as exc:
                self._drop_connection()
                if in_tx or attempt == 1:
                    raise self.db.unavailable(exc) from exc
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction on this thread's connection; nested calls join the outer one."""
        conn, _ = self._connection()
        local = self._local
        if local.depth:
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        try:
            with conn.begin():
                local.depth = 1
                try:
                    yield
                finally:
                    local.depth = 0
        except self._errors() as exc:  # BEGIN or COMMIT met a lost connection
            self._drop_connection()
            raise self.db.unavailable(exc) from exc

    def _statement(self, cache_key: Any, build: Any) -> str:
        sql = self._stmts.get(cache_key)
        if sql is None:
            sql = self._stmts[cache_key] = self.db.sql(build())
        return sql

    # --- statements --------------------------------------------------------------------
    def _upsert_sql(self) -> str:
        q = self._q
        cols = ", ".join(q[c] for c in _ROW_ORDER)
        marks = ", ".join("?" * len(_ROW_ORDER))
        insert = f"INSERT INTO {self._t} ({cols}) VALUES ({marks})"
        updated = [q[c] for c in _ROW_ORDER if c != "identity"]
        return self.dialect.upsert(insert, q["identity"], updated)

    def _rows(self, records: Sequence[XComRecord]) -> list[tuple[Any, ...]]:
        """Upsert parameters of ``records``, in ``_ROW_ORDER``."""
        stamp = self._stamp
        if stamp is not None:  # created_at as the text SQLAlchemy would store (SQLite)
            return [
                (r.identity, r.flow_id, r.task_id, r.key, r.dag_run_id, r.batch_id, r.value_type,
                 r.value, r.size, r.pushed_ns, stamp(r.pushed_ns))
                for r in records
            ]  # fmt: skip
        return [
            (r.identity, r.flow_id, r.task_id, r.key, r.dag_run_id, r.batch_id, r.value_type,
             r.value, r.size, r.pushed_ns, _EPOCH + _dt.timedelta(microseconds=r.pushed_ns // 1000))
            for r in records
        ]  # fmt: skip

    def upsert(self, records: Sequence[XComRecord]) -> None:
        sql = self._statement("upsert", self._upsert_sql)
        if len(records) == 1:
            self._run(sql, self._rows(records)[0])
        elif records:
            rows = self._rows(records)
            with self.transaction():
                self._run(sql, rows, many=True)

    def _filters(
        self, q: XComQuery, *, with_task: bool = True
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The columns ``q`` filters on (also the statement's cache key) and their values."""
        flow, task, key, run, batch = q
        if (
            with_task
            and task is not None
            and key is not None
            and flow is not None
            and run is not None
            and batch is not None
        ):  # a pull that names every part: the common case
            return _ALL_FILTERS, (task, key, flow, run, batch)
        names: list[str] = []
        values: list[Any] = []
        for name, value in (
            ("task_id", task if with_task else None),
            ("key", key),
            ("flow_id", flow),
            ("dag_run_id", run),
            ("batch_id", batch),
        ):
            if value is not None:
                names.append(name)
                values.append(value)
        return tuple(names), tuple(values)

    def _where(self, names: Sequence[str], extra: Sequence[str] = ()) -> str:
        conds = [*extra, *(f"{self._q[n]} = ?" for n in names)]
        return f" WHERE {' AND '.join(conds)}" if conds else ""

    def newest(self, q: XComQuery) -> XComRecord | None:
        names, values = self._filters(q)
        if names is _ALL_FILTERS and not self.dialect.prefers_lookup_index:
            # Every part given: at most one row matches, the one keyed by its identity. Asking
            # by primary key leaves a planner nothing to get wrong (PostgreSQL without fresh
            # statistics otherwise picks the run index and reads every row of the run) and is
            # the clustered key on MySQL and an index scan on DuckDB. SQLite always takes the
            # lookup index for the filters below, which saves hashing the identity.
            task, key, flow, run, batch = values
            sql = self._stmts.get("identity") or self._statement(
                "identity",
                lambda: f"SELECT {self._select} FROM {self._t} WHERE {self._q['identity']} = ?",
            )
            row = self._run(sql, (identity_key(flow, task, key, run, batch),), fetch="one")
            return XComRecord(*row) if row is not None else None
        # (task_id, key, pushed_ns) serves both the filter and the order.
        sql = self._stmts.get(names) or self._statement(
            names,
            lambda: (
                f"SELECT {self._select} FROM {self._t}{self._where(names)} "
                f"ORDER BY {self._q['pushed_ns']} DESC LIMIT 1"
            ),
        )
        row = self._run(sql, values, fetch="one")
        return XComRecord(*row) if row is not None else None

    def newest_per_task(self, q: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}
        names, values = self._filters(q, with_task=False)
        in_ids = f"{self._q['task_id']} IN ({', '.join('?' * len(ids))})"
        sql = self._statement(
            ("many", len(ids), *names),
            lambda: (
                f"SELECT {self._select} FROM {self._t}{self._where(names, [in_ids])} "
                f"ORDER BY {self._q['pushed_ns']} DESC"
            ),
        )
        found: dict[str, XComRecord] = {}
        for row in self._run(sql, (*ids, *values), fetch="all"):
            if row[1] not in found:
                found[row[1]] = XComRecord(*row)
        return found

    def scan(
        self, q: XComQuery, *, limit: int | None, preview_chars: int | None
    ) -> list[XComRecord]:
        """Matching records, newest first: values cut to ``preview_chars`` (``None``: whole)."""
        names, values = self._filters(q)
        n = None if preview_chars is None else max(1, int(preview_chars))
        cols = (
            self._select
            if n is None
            else ", ".join(
                self._q[c] if c != "value" else f"SUBSTR({self._q['value']}, 1, {n + 1})"
                for c in _COLUMNS
            )
        )
        sql = (
            f"SELECT {cols} FROM {self._t}{self._where(names)} "
            f"ORDER BY {self._q['pushed_ns']} DESC, {self._q['identity']} DESC"
        )
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        out = []
        for row in self._run(self.db.sql(sql), values, fetch="all"):
            rec = XComRecord(*row)
            if n is not None and rec.value is not None and len(rec.value) > n:
                rec.value = rec.value[:n]
                rec.truncated = True
            out.append(rec)
        return out

    def count(self, q: XComQuery) -> int:
        names, values = self._filters(q)
        sql = f"SELECT COUNT(*) FROM {self._t}{self._where(names)}"
        return int(self._run(self.db.sql(sql), values, fetch="one")[0])

    def delete(self, q: XComQuery, *, older_than_ns: int | None = None) -> int:
        names, values = self._filters(q)
        extra = []
        if older_than_ns is not None:
            extra.append(f"{self._q['pushed_ns']} < ?")
            values = (int(older_than_ns), *values)
        sql = f"DELETE FROM {self._t}{self._where(names, extra)}"
        return int(self._run(self.db.sql(sql), values))
