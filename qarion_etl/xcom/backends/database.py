"""The ``database`` XCom backend: one SQLAlchemy Core table in the metadata database.

Table ``<namespace>_xcom`` (or ``table_name``)::

    identity    VARCHAR(64) PRIMARY KEY   sha256 of (flow, task, key, run, batch); a missing
                                          run or batch is part of it, so "no run" is one row
    flow_id, task_id, key, dag_run_id     VARCHAR(250)
    batch_id    BIGINT NULL
    value_type  VARCHAR(16)               json | string | integer | float | boolean | binary
    value       TEXT (LONGTEXT on MySQL)  JSON text, readable with a plain SELECT
    size        INTEGER                   bytes of value
    pushed_ns   BIGINT                    push time in ns: the newest push wins
    created_at  TIMESTAMP (UTC)           the same moment, for people

Indexes: ``(task_id, key, pushed_ns)`` for pulls, ``(flow_id, dag_run_id)`` for clears and listings,
``(pushed_ns)`` for listings and pruning. A push is one atomic upsert (``ON CONFLICT DO
UPDATE`` on SQLite, PostgreSQL and DuckDB; ``ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB).

Speed: statements are built with SQLAlchemy Core and compiled once per store; they run on
one DBAPI connection per thread, held for the life of the backend and detached from the
engine's pool, in autocommit mode (each upsert is its own transaction) with explicit
``BEGIN``/``COMMIT`` around batches. The table is created once, on first use.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from qarion_etl.errors import ConfigError
from qarion_etl.xcom.backends.offload import OffloadMixin
from qarion_etl.xcom.records import MAX_ID_LENGTH, XComQuery, XComRecord

if TYPE_CHECKING:
    from qarion_etl.db_service import DatabaseService

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")
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
_BEGIN = {
    "sqlite": "BEGIN IMMEDIATE",
    "mysql": "START TRANSACTION",
    "mariadb": "START TRANSACTION",
    "duckdb": "BEGIN TRANSACTION",
}


class DatabaseXComBackend(OffloadMixin):
    """XComs in a table of the metadata database (the default backend).

    Args:
        db_service: the metadata database.
        table_name: table name; default ``<namespace>_xcom`` (``qarion_xcom``).
        namespace: prefix of the metadata tables; default ``qarion``.
        offload_threshold_bytes, offload_to: values larger than the threshold go to the
            object store ``offload_to`` names (see ``qarion_etl.xcom.backends.offload``).
        root: the project root, for a relative ``offload_to.base_path``.
    """

    def __init__(
        self,
        db_service: DatabaseService,
        *,
        table_name: str | None = None,
        namespace: str | None = None,
        offload_threshold_bytes: int | None = None,
        offload_to: Mapping[str, Any] | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(db_service, table_name=table_name, namespace=namespace)
        self.configure_offload(offload_threshold_bytes, offload_to, root=root)


def build_table(name: str, dialect: str | None = None) -> sa.Table:
    """The XCom table definition (its own ``MetaData``).

    MySQL table options are only given for MySQL/MariaDB: naming them makes SQLAlchemy
    import that dialect, which every other database would pay for at start-up.
    """
    if not _TABLE_NAME.match(name):
        raise ConfigError(
            f"XCom table name {name!r} must be a plain identifier of at most 60 characters"
        )
    ident = sa.String(MAX_ID_LENGTH)
    # MySQL's TEXT holds 64 KB; a length makes its dialect choose LONGTEXT (4 GB).
    mysql = dialect in (None, "mysql", "mariadb")
    text = (
        sa.Text().with_variant(sa.Text(length=2**32 - 1), "mysql", "mariadb")
        if mysql
        else sa.Text()
    )
    stamp = sa.DateTime()  # for people; ordering uses pushed_ns
    md = sa.MetaData()
    table = sa.Table(
        name,
        md,
        sa.Column("identity", sa.String(64), primary_key=True),
        sa.Column("flow_id", ident, nullable=False),
        sa.Column("task_id", ident, nullable=False),
        sa.Column("key", ident, nullable=False),
        sa.Column("dag_run_id", ident, nullable=True),
        sa.Column("batch_id", sa.BigInteger, nullable=True),
        sa.Column("value_type", sa.String(16), nullable=False),
        sa.Column("value", text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("pushed_ns", sa.BigInteger, nullable=False),
        sa.Column("created_at", stamp, nullable=False),
        **(
            {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
            if mysql
            else {}
        ),
    )
    sa.Index(_index_name(name, "lookup"), table.c.task_id, table.c.key, table.c.pushed_ns)
    sa.Index(_index_name(name, "run"), table.c.flow_id, table.c.dag_run_id)
    sa.Index(_index_name(name, "pushed"), table.c.pushed_ns)
    return table


def _index_name(table: str, what: str) -> str:
    name = f"ix_{table}_{what}"
    if len(name) > 60:
        name = f"ix_{table[:40]}_{hashlib.sha256(table.encode()).hexdigest()[:8]}_{what}"
    return name


class _Compiled:
    """One statement compiled for the dialect, and how to bind its parameters."""

    __slots__ = ("sql", "names", "defaults", "_get")

    def __init__(self, stmt: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup else None
        )
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}
        self._get = itemgetter(*self.names) if self.names and len(self.names) > 1 else None

    def bind(self, values: dict[str, Any]) -> Any:
        if self.defaults:
            values = {**self.defaults, **values}
        if self.names is None:
            return values
        if self._get is not None:
            return self._get(values)
        return tuple(values[n] for n in self.names)


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
        self.table = build_table(table_name, db.dialect)
        self.dialect = db.dialect
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open: list[Any] = []
        self._pid = os.getpid()
        self._ready = False
        self._stmts: dict[Any, _Compiled] = {}
        self._stamp = _SqliteStamp() if self.dialect == "sqlite" else None
        _STORES.add(self)
        dbapi = db.engine.dialect.dbapi
        self._conn_errors: tuple[type[BaseException], ...] = tuple(
            e
            for e in (
                getattr(dbapi, "OperationalError", None),
                getattr(dbapi, "InterfaceError", None),
            )
            if e
        )

    # --- connections -------------------------------------------------------------------
    def _after_fork(self) -> None:
        """In a forked child: the parent's connections are not ours to use or close."""
        self._pid = os.getpid()
        self._local = threading.local()
        self._open = []
        self._lock = threading.Lock()
        self.db.engine.dispose(close=False)

    def _connection(self) -> tuple[Any, Any]:
        held = getattr(self._local, "conn", None)
        if held is None:
            if not self._ready:
                self._create_table()
            try:
                fairy = self.db.engine.raw_connection()
            except sa.exc.SQLAlchemyError as exc:
                raise self.db.unavailable(exc) from exc
            fairy.detach()
            conn = fairy.dbapi_connection
            self._autocommit(conn)
            held = (conn, conn.cursor())
            self._local.conn = held
            self._local.depth = 0
            with self._lock:
                self._open.append(conn)
        return held

    def _autocommit(self, conn: Any) -> None:
        if self.dialect == "sqlite":
            conn.isolation_level = None
        elif self.dialect == "postgresql":
            conn.rollback()
            conn.autocommit = True
        elif self.dialect in ("mysql", "mariadb"):
            conn.rollback()
            conn.autocommit(True)
        else:
            try:
                conn.commit()
            except Exception:  # nothing to commit
                pass

    def _drop_connection(self) -> None:
        held = getattr(self._local, "conn", None)
        self._local.conn = None
        self._local.depth = 0
        if held is not None:
            with self._lock:
                if held[0] in self._open:
                    self._open.remove(held[0])
            try:
                held[0].close()
            except Exception:  # already broken
                pass

    def close(self) -> None:
        """Close every connection this store opened (in this process)."""
        with self._lock:
            conns, self._open = self._open, []
        if os.getpid() == self._pid:
            for conn in conns:
                try:
                    conn.close()
                except Exception:  # another thread's SQLite connection, or already gone
                    pass
        self._local = threading.local()

    def _create_table(self) -> None:
        with self._lock:
            if self._ready:
                return
            self.db.create_all(self.table.metadata)  # safe when another process creates it too
            self._ready = True

    # --- execution ---------------------------------------------------------------------
    def _run(
        self, stmt: _Compiled, params: Any, *, many: bool = False, fetch: str | None = None
    ) -> Any:
        for attempt in (0, 1):
            local = self._local
            held = getattr(local, "conn", None)
            conn, cur = held if held is not None else self._connection()
            in_tx = local.depth > 0
            try:
                if many:
                    cur.executemany(stmt.sql, params)
                else:
                    cur.execute(stmt.sql, params)
                if fetch == "one":
                    return cur.fetchone()
                if fetch == "all":
                    return cur.fetchall()
                return cur.rowcount
            except self._conn_errors as exc:
                self._drop_connection()
                if in_tx or attempt == 1:
                    raise self.db.unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _plain(self, sql: str) -> None:
        conn, cur = self._connection()
        cur.execute(sql)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction on this thread's connection; nested calls join the outer one."""
        self._connection()
        local = self._local
        if local.depth:
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        try:
            self._plain(_BEGIN.get(self.dialect, "BEGIN"))
        except self._conn_errors as exc:
            self._drop_connection()
            raise self.db.unavailable(exc) from exc
        local.depth = 1
        try:
            yield
        except BaseException:
            local.depth = 0
            try:
                self._plain("ROLLBACK")
            except Exception:
                self._drop_connection()
            raise
        local.depth = 0
        try:
            self._plain("COMMIT")
        except self._conn_errors as exc:
            self._drop_connection()
            raise self.db.unavailable(exc) from exc

    def _compiled(self, cache_key: Any, build: Any) -> _Compiled:
        stmt = self._stmts.get(cache_key)
        if stmt is None:
            self._connection()  # the dialect knows the server version only after connecting
            stmt = _Compiled(build(), self.db.engine.dialect)
            self._stmts[cache_key] = stmt
        return stmt

    # --- statements --------------------------------------------------------------------
    def _upsert_stmt(self) -> sa.ClauseElement:
        t = self.table
        updated = [c.name for c in t.columns if c.name != "identity"]
        if self.dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            ins = mysql_insert(t)
            return ins.on_duplicate_key_update({c: ins.inserted[c] for c in updated})
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # PostgreSQL, DuckDB and other dialects that speak ON CONFLICT
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        ins = insert(t)
        return ins.on_conflict_do_update(
            index_elements=[t.c.identity], set_={c: ins.excluded[c] for c in updated}
        )

    def _row(self, r: XComRecord) -> dict[str, Any]:
        if self._stamp is not None:
            created: Any = self._stamp(r.pushed_ns)
        else:
            created = _EPOCH + _dt.timedelta(microseconds=r.pushed_ns // 1000)
        return {
            "identity": r.identity,
            "flow_id": r.flow_id,
            "task_id": r.task_id,
            "key": r.key,
            "dag_run_id": r.dag_run_id,
            "batch_id": r.batch_id,
            "value_type": r.value_type,
            "value": r.value,
            "size": r.size,
            "pushed_ns": r.pushed_ns,
            "created_at": created,
        }

    _ROW_ORDER = (
        "identity", "flow_id", "task_id", "key", "dag_run_id", "batch_id",
        "value_type", "value", "size", "pushed_ns", "created_at",
    )  # fmt: skip

    def _rows(self, stmt: _Compiled, records: Sequence[XComRecord]) -> list[Any]:
        """Bound parameters of many records; SQLite's positional tuples are built directly."""
        stamp = self._stamp
        if stamp is not None and stmt.names == self._ROW_ORDER and not stmt.defaults:
            return [
                (r.identity, r.flow_id, r.task_id, r.key, r.dag_run_id, r.batch_id, r.value_type,
                 r.value, r.size, r.pushed_ns, stamp(r.pushed_ns))
                for r in records
            ]  # fmt: skip
        return [stmt.bind(self._row(r)) for r in records]

    def upsert(self, records: Sequence[XComRecord]) -> None:
        stmt = self._compiled("upsert", self._upsert_stmt)
        if len(records) == 1:
            self._run(stmt, self._rows(stmt, records)[0])
        elif records:
            rows = self._rows(stmt, records)
            with self.transaction():
                self._run(stmt, rows, many=True)

    _FILTERS = ("task_id", "key", "flow_id", "dag_run_id", "batch_id")

    def _values(self, q: XComQuery, *, with_task: bool = True) -> dict[str, Any]:
        """Bind values of the filters ``q`` sets, keyed ``w_<column>`` (also the cache key)."""
        values: dict[str, Any] = {}
        if with_task and q.task_id is not None:
            values["w_task_id"] = q.task_id
        if q.key is not None:
            values["w_key"] = q.key
        if q.flow_id is not None:
            values["w_flow_id"] = q.flow_id
        if q.dag_run_id is not None:
            values["w_dag_run_id"] = q.dag_run_id
        if q.batch_id is not None:
            values["w_batch_id"] = q.batch_id
        return values

    def _clauses(self, values: dict[str, Any]) -> list[Any]:
        t = self.table
        return [
            t.c[name[2:]] == sa.bindparam(name)
            for name in values
            if name.startswith("w_") and name[2:] in self._FILTERS
        ]

    def _select_full(self) -> sa.Select[Any]:
        return sa.select(*(self.table.c[c] for c in _COLUMNS))

    def newest(self, q: XComQuery) -> XComRecord | None:
        values = self._values(q)
        stmt = self._stmts.get(("newest", *values))
        if stmt is None:
            t = self.table
            # (task_id, key, pushed_ns) serves both the filter and the order.
            sel = (
                self._select_full()
                .where(*self._clauses(values))
                .order_by(t.c.pushed_ns.desc())
                .limit(sa.literal_column("1"))
            )
            stmt = self._compiled(("newest", *values), lambda: sel)
        row = self._run(stmt, stmt.bind(values), fetch="one")
        return XComRecord(*row) if row is not None else None

    def newest_per_task(self, q: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}
        values = self._values(q, with_task=False)
        filters = tuple(values)
        for i, tid in enumerate(ids):
            values[f"t_{i}"] = tid
        t = self.table

        def build() -> sa.ClauseElement:
            in_ids = t.c.task_id.in_([sa.bindparam(f"t_{i}") for i in range(len(ids))])
            return (
                self._select_full()
                .where(in_ids, *self._clauses(values))
                .order_by(t.c.pushed_ns.desc())
            )

        stmt = self._compiled(("many", len(ids), *filters), build)
        found: dict[str, XComRecord] = {}
        for row in self._run(stmt, stmt.bind(values), fetch="all"):
            if row[1] not in found:
                found[row[1]] = XComRecord(*row)
        return found

    def scan(self, q: XComQuery, *, limit: int | None, preview_chars: int) -> list[XComRecord]:
        values = self._values(q)
        clauses = self._clauses(values)
        t = self.table
        n = max(1, int(preview_chars))
        cols = [
            t.c[c] if c != "value" else sa.func.substr(t.c.value, 1, n + 1).label("value")
            for c in _COLUMNS
        ]
        sel = sa.select(*cols).where(*clauses).order_by(t.c.pushed_ns.desc(), t.c.identity.desc())
        if limit is not None:
            sel = sel.limit(max(0, int(limit)))
        stmt = _Compiled(sel, self._dialect_ready())
        out = []
        for row in self._run(stmt, stmt.bind(values), fetch="all"):
            rec = XComRecord(*row)
            if rec.value is not None and len(rec.value) > n:
                rec.value = rec.value[:n]
                rec.truncated = True
            out.append(rec)
        return out

    def delete(self, q: XComQuery, *, older_than_ns: int | None = None) -> int:
        values = self._values(q)
        clauses = self._clauses(values)
        t = self.table
        if older_than_ns is not None:
            clauses.append(t.c.pushed_ns < sa.bindparam("w_cutoff"))
            values["w_cutoff"] = int(older_than_ns)
        stmt = _Compiled(sa.delete(t).where(*clauses), self._dialect_ready())
        return int(self._run(stmt, stmt.bind(values)))

    def _dialect_ready(self) -> sa.Dialect:
        self._connection()
        return self.db.engine.dialect
