"""The ``Dialect`` base: what every engine has, with defaults, and the methods engines override.

One subclass per engine (``duckdb.py``, ``sqlite.py``, ``postgresql.py``, ``mysql.py``)
states its differences as class attributes and small overrides, each with its reason beside
it; its one instance is the engine's dialect (``qarion_etl.db.engines`` keeps the registry of
names and aliases). Callers ask the dialect (``db.dialect.quote(name)``,
``db.dialect.sql_type("decimal")``, ``dialect.insert_rows(...)``) and never compare
engine names. What a dialect answers, by group:

- names and values: quoting, literals, the SQL type of each flow and metadata column type,
  schemas or name prefixes for a namespace;
- statements: placeholders, ``BEGIN``, the upsert clause and its fence, table swaps, the
  duplicate-key query;
- driver connections: the statements a new one runs, autocommit, cancel from another
  thread, the cursor statements run on, database files opened without SQLAlchemy;
- loading: rows from Python (``insert_rows``/``load_rows``), and files the engine reads
  itself (``file_load``, the load jobs of ``db.loading``);
- errors: the kind of a driver's error (``error_kind``, see ``db.errors``) and whether it
  is a conflict another try of the transaction can pass.

The defaults are plain SQL through a DB-API driver (``"`` quoting, DuckDB's type names, no
schemas, non-transactional DDL, ``executemany`` loads, no cancel): what an engine reached
through a SQLAlchemy dialect qarion-etl does not list gets, under its own name
(``generic.Generic``). A dialect is shared by every connection to its engine and never changed.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from qarion_etl.db.loading import loaded
from qarion_etl.db.statements import SqlRunner, run_recorded

if TYPE_CHECKING:
    from qarion_etl.db.loading import FileLoad, FileSource

#: A flow's column ``schema_type`` -> the engine's SQL type.
ColumnTypes = Mapping[str, str]

#: The flow schema types, in the order ``column_types_of`` takes them.
SCHEMA_TYPES = ("string", "integer", "float", "decimal", "boolean", "date", "timestamp")
#: The metadata column kinds (``str:<n>`` aside), in the order ``metadata_types_of`` takes them.
METADATA_KINDS = ("bigint", "int", "text", "longtext", "datetime")

#: Bound parameters per statement that every SQLite build accepts (older ones stop at 999).
MAX_PARAMETERS = 999


def column_types_of(*sql: str) -> ColumnTypes:
    """The SQL type of each flow schema type, given in ``SCHEMA_TYPES`` order."""
    return MappingProxyType(dict(zip(SCHEMA_TYPES, sql, strict=True)))


def metadata_types_of(*sql: str) -> Mapping[str, str]:
    """The SQL type of each metadata column kind, given in ``METADATA_KINDS`` order."""
    return MappingProxyType(dict(zip(METADATA_KINDS, sql, strict=True)))


DUCKDB_TYPES = column_types_of(
    "VARCHAR", "BIGINT", "DOUBLE", "DECIMAL(38, 10)", "BOOLEAN", "DATE", "TIMESTAMP"
)


class FileDatabase:
    """Driver connections to one database (a file, or a server's URL), served without
    SQLAlchemy.

    ``DatabaseService``'s native source pools what ``connect()`` returns; ``close()`` ends
    whatever the file's connections share.
    """

    def connect(self) -> Any:
        """A new driver connection in autocommit mode, owned by the caller."""
        raise NotImplementedError

    def close(self) -> None:
        """Close what the connections share (their database object), if anything."""


class Dialect:
    """What qarion-etl knows about one database engine, and how it loads and fails.

    Args:
        name: the engine's name where it differs from the class's (``Generic``).
    """

    name: str = "generic"
    aliases: tuple[str, ...] = ()
    #: The SQL type of each flow schema type (``[input].columns``).
    column_types: ColumnTypes = DUCKDB_TYPES
    #: The SQL type of each metadata column kind, for DDL written without SQLAlchemy
    #: (``str:<n>`` is ``VARCHAR(n)`` everywhere); empty where SQLAlchemy writes the DDL.
    metadata_types: Mapping[str, str] = MappingProxyType({})
    identifier_quote: str = '"'
    #: A flow namespace is a schema (else a ``namespace__`` prefix of table names).
    has_schemas: bool = False
    #: ``CREATE``/``DROP``/``RENAME`` roll back with the transaction.
    transactional_ddl: bool = False
    begin_statement: str = "BEGIN"
    #: ``qmark`` (``?``) or ``format`` (``%s``) placeholders.
    paramstyle: Literal["qmark", "format"] = "qmark"
    #: The clause ``upsert`` writes (``on_duplicate_key``: MySQL's override).
    upsert_style: Literal["on_conflict", "on_duplicate_key"] = "on_conflict"
    #: Ends a ``SELECT`` that locks the rows it reads until the transaction ends.
    locking_read: str = ""
    #: Index names belong to their table (MySQL), not to the schema.
    index_names_per_table: bool = False
    #: ``swaps`` renames the replaced table out of the way, so ``materialize`` names a
    #: free table for it (``old``), instead of dropping it first.
    swap_by_rename_table: bool = False
    #: The engine's fastest way in, as a word for people (tests, ``doctor``): the engine
    #: reads the file itself, ``COPY … FROM STDIN``, or ``executemany`` of checked rows.
    #: ``file_load`` and ``load_rows`` are what load.
    bulk_load: Literal["read_file", "copy", "executemany"] = "executemany"
    #: Rows per ``INSERT … VALUES (…), (…)`` of ``load_rows`` (1: one row per statement).
    rows_per_insert: int = 1
    #: Checked values of these schema types are bound in another form (the driver binds no
    #: such Python type): the checked reader converts them so.
    bind_as: Mapping[str, Callable[[Any], Any]] = MappingProxyType({})
    #: One writer at a time: the runner serialises writes to the warehouse.
    single_writer: bool = False
    #: ``cancel`` can abandon a running statement from another thread.
    cancellable: bool = False
    #: Point pulls of XComs use the lookup index rather than the primary key.
    prefers_lookup_index: bool = False
    #: ``created_at`` is stored as SQLAlchemy's text form, not a bound ``datetime``.
    datetime_as_text: bool = False
    #: The SQLAlchemy driver opens a transaction only before DML: a SQLAlchemy ``begin()``
    #: must also send ``begin_statement`` so DDL belongs to the transaction.
    driver_begins_lazily: bool = False
    #: Lists the tables of a schema (``?``: the schema) without SQLAlchemy; native engines.
    tables_query: str | None = None
    #: The schema ``tables_query`` lists when none is named.
    default_schema: str = "main"
    #: The primary-key columns of a table (``?``: the table), in key order; native engines.
    primary_key_query: str | None = None
    #: Prefix of SQLAlchemy's dialect-specific table options (``mysql_engine`` …); naming
    #: them for another dialect makes SQLAlchemy import that dialect.
    table_options_prefix: str | None = None
    #: A length that makes SQLAlchemy choose a text type big enough for an XCom value.
    long_text_length: int | None = None
    #: A server reached over the network (pool pre-ping, a connect timeout).
    is_server: bool = False
    #: Statements every new driver connection runs first; the ones marked optional may fail
    #: (a read-only or in-memory database keeps its journal mode).
    connect_statements: tuple[tuple[str, bool], ...] = ()
    #: The driver's own timeout for a locked database (seconds), if it has one.
    lock_timeout_seconds: float | None = None
    #: The driver module of a database file served without SQLAlchemy (``open_file``).
    native_driver: str | None = None
    #: URL schemes that name this engine besides its names (``sc://`` is Spark Connect).
    url_schemes: tuple[str, ...] = ()

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name.lower()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} dialect {self.name!r}>"

    # --- names ---------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def quote(self, name: str) -> str:
        """One identifier, always quoted (never pasted as it is)."""
        q = self.identifier_quote
        return q + name.replace(q, q + q) + q

    def physical(self, namespace: str | None, name: str) -> str:
        """The table's own name: prefixed by the namespace where there are no schemas."""
        if namespace and not self.has_schemas:
            return f"{namespace}__{name}"
        return name

    def schema(self, namespace: str | None) -> str | None:
        """The schema that holds a namespace's tables (``None``: the default one)."""
        return namespace if self.has_schemas and namespace else None

    def qualified(self, namespace: str | None, name: str) -> str:
        """The quoted name of table ``name`` in ``namespace`` (``"ns"."t"`` or ``"ns__t"``)."""
        if namespace and self.has_schemas:
            return f"{self.quote(namespace)}.{self.quote(name)}"
        return self.quote(self.physical(namespace, name))

    # --- values --------------------------------------------------------------------------
    def literal(self, value: Any) -> str:
        """``value`` as a SQL literal: numbers and booleans as they are, text quoted.

        Raises:
            ValueError: the value has no literal (NaN, infinity, a NUL character).
        """
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if math.isnan(value) or math.isinf(value):
                raise ValueError(f"{value!r} has no SQL literal")
            return repr(value)
        if isinstance(value, decimal.Decimal):
            return str(value)
        if isinstance(value, _dt.datetime):
            value = value.isoformat(sep=" ")
        elif isinstance(value, _dt.date):
            value = value.isoformat()
        text = str(value)
        if "\x00" in text:
            raise ValueError("a value with a NUL character cannot be a SQL literal")
        return f"'{self.escape_text(text)}'"

    def escape_text(self, text: str) -> str:
        """``text`` as it goes between the single quotes of a string literal."""
        return text.replace("'", "''")

    def sql_type(self, schema_type: str) -> str:
        """The column type used for a flow ``schema_type``."""
        return self.column_types[schema_type]

    # --- statements ----------------------------------------------------------------------
    def sql(self, statement: str) -> str:
        """``statement`` written with ``?`` placeholders, in this dialect's style."""
        return statement if self.paramstyle == "qmark" else statement.replace("?", "%s")

    def placeholders(self, count: int) -> str:
        mark = "?" if self.paramstyle == "qmark" else "%s"
        return ", ".join([mark] * count)

    def upsert(
        self,
        insert: str,
        key: str,
        updated: Sequence[str],
        *,
        table: str | None = None,
        not_older: str | None = None,
    ) -> str:
        """``insert`` (an ``INSERT … VALUES``) made to replace the row with the same ``key``.

        With ``not_older`` (a quoted column of ``table``, the quoted table), the row is only
        replaced when the new row's ``not_older`` is at least the stored one, or 0: a fence,
        so a write from an older try never lands over a newer try's.
        """
        sql = f"{insert} ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in updated
        )
        if not_older is not None:
            n = not_older
            sql += f" WHERE {table}.{n} <= excluded.{n} OR excluded.{n} = 0"
        return sql

    def swap(self, *, target: str, staging: str, renamed: str, old: str | None) -> list[str]:
        """Statements that make the table ``staging`` the table ``target``.

        Args:
            target, staging: quoted, qualified table names.
            renamed: ``target``'s quoted name without its schema (``ALTER … RENAME TO``).
            old: a free qualified name for the replaced table when ``target`` exists
                (engines that swap with ``RENAME TABLE``); ``None`` when it does not.
        """
        return self.swaps([(target, staging, renamed, old)])

    def swaps(self, tables: Sequence[tuple[str, str, str, str | None]]) -> list[str]:
        """Statements that swap in several tables, each ``(target, staging, renamed, old)``."""
        return [
            statement
            for target, staging, renamed, _ in tables
            for statement in (
                f"DROP TABLE IF EXISTS {target}",
                f"ALTER TABLE {staging} RENAME TO {renamed}",
            )
        ]

    def append(
        self, target: str, staging: str, columns: Sequence[str], keys: Sequence[str]
    ) -> tuple[list[str], bool]:
        """Statements that add the rows of ``staging`` to the existing ``target``.

        With ``keys``, a staged row replaces the target's row with the same key. Returns
        the statements and whether ``staging`` is to be swapped in after them (an engine
        that cannot change rows in place copies the target's other rows into
        ``staging`` and swaps it in); otherwise the statements drop ``staging``.
        """
        q = self.quote
        statements = []
        if keys:
            match = " AND ".join(f"s.{q(k)} = {target}.{q(k)}" for k in keys)
            statements.append(
                f"DELETE FROM {target} WHERE EXISTS (SELECT 1 FROM {staging} s WHERE {match})"
            )
        col_list = ", ".join(q(c) for c in columns)
        statements += [
            f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {staging}",
            f"DROP TABLE {staging}",
        ]
        return statements, False

    def duplicate_key_sql(self, table: str, keys: Iterable[str]) -> str:
        """A query for one key that occurs more than once in ``table`` (no row: unique).

        NULL keys count as equal to each other.
        """
        cols = ", ".join(self.quote(k) for k in keys)
        return f"SELECT {cols} FROM {table} GROUP BY {cols} HAVING COUNT(*) > 1 LIMIT 1"

    def duplicate_key_statements(self, table: str, keys: Sequence[str]) -> list[str]:
        """The statements of the unique-key check of a freshly loaded table; the last one
        is ``duplicate_key_sql``, whose first row is a duplicated key."""
        return [self.duplicate_key_sql(table, keys)]

    # --- loading -------------------------------------------------------------------------
    def file_load(self, source: FileSource) -> FileLoad | None:
        """A load in which the engine reads ``source`` itself, if it can read it as the
        checked reader would; ``None``: the checked reader reads it (``load_rows``)."""
        return None

    def insert_rows(
        self,
        conn: SqlRunner,
        table: str,
        columns: Sequence[str],
        batches: Iterable[Sequence[tuple[Any, ...]]],
        after_batch: Callable[[], None] = lambda: None,
    ) -> int:
        """``load_rows`` on ``conn``'s driver connection, recorded as one statement and a
        count in the statements of the try."""
        rows = int(
            run_recorded(
                conn.statement_log,
                self.load_statement(table, columns),
                None,
                lambda: self.load_rows(conn.raw, table, columns, batches, after_batch),
            )
        )
        loaded(conn, rows, table)
        return rows

    def load_rows(
        self,
        raw: Any,
        table: str,
        columns: Sequence[str],
        batches: Iterable[Sequence[tuple[Any, ...]]],
        after_batch: Callable[[], None] = lambda: None,
    ) -> int:
        """Insert row tuples into ``table`` through the driver connection ``raw``; returns the count.

        ``after_batch`` runs after every batch, when no statement is running on ``raw``
        (the runner checks for Ctrl-C there; an ingestion writes its rejects).
        """
        cur = self.cursor(raw)
        total = 0
        try:
            for batch in batches:
                if batch:
                    self.insert_batch(cur, table, columns, batch)
                total += len(batch)
                after_batch()
        finally:
            if cur is not raw:
                cur.close()
        return total

    def load_statement(self, table: str, columns: Sequence[str]) -> str:
        """The statement ``load_rows`` runs for each batch, as it reads in a SQL file."""
        return f"-- once per batch of rows:\n{self.batch_statement(table, columns)}"

    def batch_statement(self, table: str, columns: Sequence[str]) -> str:
        """The statement of one batch of ``insert_batch`` (one row's form)."""
        col_list = ", ".join(self.quote(c) for c in columns)
        return f"INSERT INTO {table} ({col_list}) VALUES ({self.placeholders(len(columns))})"

    def insert_batch(
        self, cur: Any, table: str, columns: Sequence[str], batch: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert one batch of rows on the cursor ``cur``: ``executemany``, with
        ``rows_per_insert`` rows to a statement where that is more than one."""
        col_list = ", ".join(self.quote(c) for c in columns)
        row_sql = f"({self.placeholders(len(columns))})"
        per = max(1, min(self.rows_per_insert, MAX_PARAMETERS // len(columns)))
        insert = f"INSERT INTO {table} ({col_list}) VALUES "
        whole = len(batch) - len(batch) % per
        if per > 1 and whole:
            width = per * len(columns)
            flat = list(chain.from_iterable(batch[:whole]))
            cur.executemany(
                insert + ", ".join([row_sql] * per),
                [flat[i : i + width] for i in range(0, len(flat), width)],
            )
            batch = batch[whole:]
        if batch:
            cur.executemany(insert + row_sql, batch)

    # --- driver connections --------------------------------------------------------------
    def cursor(self, raw: Any) -> Any:
        """The cursor statements on the driver connection ``raw`` run on (the caller
        closes it unless it is ``raw`` itself)."""
        return raw.cursor()

    def prepare(self, raw: Any) -> None:
        """Run ``connect_statements`` on a new driver connection."""
        if not self.connect_statements:
            return
        cur = raw.cursor()
        try:
            for statement, optional in self.connect_statements:
                try:
                    cur.execute(statement)
                except Exception:
                    if not optional:
                        raise
        finally:
            cur.close()

    def autocommit(self, raw: Any) -> None:
        """Put a driver connection (fresh from a pool, maybe in a transaction) in autocommit."""
        try:
            raw.commit()  # DB-API has no autocommit switch: end what may be open
        except Exception:  # nothing to commit
            pass

    def cancel(self, raw: Any) -> None:
        """Abandon the statement running on ``raw`` (from another thread), where the
        driver can (``cancellable``); elsewhere the task stops at its next check."""

    def closed(self, raw: Any) -> bool:
        """Whether the server closed or broke the driver connection ``raw`` (pooled natively)."""
        return bool(getattr(raw, "closed", False) or getattr(raw, "broken", False))

    def open_file(self, path: str) -> FileDatabase:
        """The database file ``path`` reached through the driver itself (``native_driver``)."""
        raise NotImplementedError(f"{self.name} is reached through SQLAlchemy")

    def connection_source(self, url: str, root: Path | None) -> Any:
        """The engine's own connection source for ``url`` (``root``: the project folder),
        or ``None``: the native or SQLAlchemy source serves it (``db.service``).

        Typed ``Any`` because the ``ConnectionSource`` protocol lives in ``db.service``,
        which imports the engines.
        """
        return None

    def sqlalchemy_creator(self, connect: Callable[[], Any]) -> Callable[[], Any] | None:
        """A ``creator`` for a SQLAlchemy engine on a natively served database file, when
        SQLAlchemy must reuse ``connect`` (the native source's connections); ``None``: its own."""
        return None

    # --- errors --------------------------------------------------------------------------
    def error_kind(self, error: BaseException) -> str:
        """The kind of the driver's error ``error`` (``db.errors``), ``other`` when unknown."""
        return "other"

    def is_conflict(self, error: BaseException) -> bool:
        """Whether the driver's ``error`` is a transaction the server gave up on because of
        another one (a deadlock or a serialisation failure: trying again is the cure)."""
        return self.error_kind(error) in ("deadlock", "serialization")
