"""One frozen ``Dialect`` per database engine: every fact the rest of the code needs about it.

Callers ask the dialect (``db.dialect.quote(name)``, ``db.dialect.transactional_ddl``,
``db.dialect.sql_type("decimal")``) and never compare engine names, so an engine's
knowledge lives in one entry of ``DIALECTS`` and aliases cannot disagree: ``mariadb`` is
the MySQL dialect, ``postgres`` the PostgreSQL one. Where an engine differs from the
others, its fields say how, and the methods below read those fields; the reason for
each difference is written beside it.

An engine reached through a SQLAlchemy dialect that is not listed gets ``GENERIC`` under
its own name (ANSI quoting, DuckDB's type names, no schemas, non-transactional DDL), with
the quoting and parameter style of its SQLAlchemy dialect filled in by the source.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from types import MappingProxyType
from typing import Any, Literal

#: How long a SQLite connection waits for another writer's lock before it gives up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: A flow's column ``schema_type`` -> the engine's SQL type.
ColumnTypes = Mapping[str, str]

#: The flow schema types, in the order ``_types`` takes them.
_SCHEMA_TYPES = ("string", "integer", "float", "decimal", "boolean", "date", "timestamp")
#: The metadata column kinds (``str:<n>`` aside), in the order ``_kinds`` takes them.
_KINDS = ("bigint", "int", "text", "longtext", "datetime")


def _types(*sql: str) -> ColumnTypes:
    return MappingProxyType(dict(zip(_SCHEMA_TYPES, sql, strict=True)))


def _kinds(*sql: str) -> Mapping[str, str]:
    return MappingProxyType(dict(zip(_KINDS, sql, strict=True)))


_DUCKDB_TYPES = _types(
    "VARCHAR", "BIGINT", "DOUBLE", "DECIMAL(38, 10)", "BOOLEAN", "DATE", "TIMESTAMP"
)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What qarion-etl knows about one database engine."""

    name: str
    aliases: tuple[str, ...] = ()
    #: The SQL type of each flow schema type (``[input].columns``).
    column_types: ColumnTypes = field(default_factory=lambda: _DUCKDB_TYPES)
    #: The SQL type of each metadata column kind, for DDL written without SQLAlchemy
    #: (``str:<n>`` is ``VARCHAR(n)`` everywhere); empty where SQLAlchemy writes the DDL.
    metadata_types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    identifier_quote: str = '"'
    #: A backslash escapes the next character in string literals (MySQL's default mode).
    backslash_escapes: bool = False
    #: A flow namespace is a schema (else a ``namespace__`` prefix of table names).
    has_schemas: bool = False
    #: ``CREATE``/``DROP``/``RENAME`` roll back with the transaction.
    transactional_ddl: bool = False
    begin_statement: str = "BEGIN"
    #: ``qmark`` (``?``) or ``format`` (``%s``) placeholders.
    paramstyle: Literal["qmark", "format"] = "qmark"
    upsert_style: Literal["on_conflict", "on_duplicate_key"] = "on_conflict"
    #: Ends a ``SELECT`` that locks the rows it reads until the transaction ends (SQLite's
    #: ``BEGIN IMMEDIATE`` already holds the whole database; DuckDB has one writer).
    locking_read: str = ""
    #: Index names belong to their table (MySQL), not to the schema.
    index_names_per_table: bool = False
    #: Replace a table with one ``RENAME TABLE a TO b, c TO a`` instead of DROP + ALTER.
    swap_by_rename_table: bool = False
    #: How ingestion gets rows in: the engine reads the file itself, ``COPY … FROM STDIN``,
    #: or batched ``executemany`` of checked tuples.
    bulk_load: Literal["read_file", "copy", "executemany"] = "executemany"
    #: Rows per ``INSERT … VALUES (…), (…)`` of ``executemany`` loads. SQLite runs a
    #: statement per row of ``executemany``, so many rows to a statement insert about
    #: twice as fast; PyMySQL already rewrites ``executemany`` into multi-row inserts.
    rows_per_insert: int = 1
    #: Rows of Python values are inserted as one ``unnest()`` of a list per column
    #: (DuckDB, whose ``executemany`` is slow), for the rows it does not read itself.
    insert_by_unnest: bool = False
    #: The driver binds no ``Decimal``/``date``/``datetime``: store them as text.
    typed_values_as_text: bool = False
    #: One writer at a time: the runner serialises writes to the warehouse.
    single_writer: bool = False
    #: A driver connection is its own cursor (``conn.execute`` returns rows).
    connection_is_cursor: bool = False
    #: Point pulls of XComs use the lookup index rather than the primary key.
    prefers_lookup_index: bool = False
    #: ``created_at`` is stored as SQLAlchemy's text form, not a bound ``datetime``.
    datetime_as_text: bool = False
    #: The unique-key check sorts and compares neighbours instead of grouping.
    sorted_unique_check: bool = False
    #: Gather statistics on a freshly loaded table before the unique-key check: PostgreSQL
    #: plans a hash aggregate for 200 groups on a table it knows nothing of, and spills.
    analyze_before_key_check: bool = False
    #: pysqlite opens a transaction only before DML: a SQLAlchemy ``begin()`` must also
    #: send ``begin_statement`` so DDL belongs to the transaction.
    driver_begins_lazily: bool = False
    #: How a running statement is abandoned from another thread, if it can be.
    cancel_method: Literal["interrupt", "cancel"] | None = None
    #: How a raw driver connection is put in autocommit mode.
    autocommit_style: Literal["isolation_none", "attribute", "method", "commit"] = "commit"
    #: Lists the tables of a schema (``?``: the schema) without SQLAlchemy; native engines.
    tables_query: str | None = None
    #: The primary-key columns of a table (``?``: the table), in key order; native engines.
    primary_key_query: str | None = None
    #: Prefix of SQLAlchemy's dialect-specific table options (``mysql_engine`` …); naming
    #: them for another dialect makes SQLAlchemy import that dialect.
    table_options_prefix: str | None = None
    #: A length that makes SQLAlchemy choose a text type big enough for an XCom value
    #: (MySQL's TEXT holds 64 KB; with this length it is LONGTEXT, 4 GB).
    long_text_length: int | None = None
    #: A server reached over the network (pool pre-ping, a connect timeout).
    is_server: bool = False
    #: Statements every new driver connection runs first; the ones marked optional may fail
    #: (a read-only or in-memory database keeps its journal mode).
    connect_statements: tuple[tuple[str, bool], ...] = ()
    #: The driver's own timeout for a locked database (seconds), if it has one.
    lock_timeout_seconds: float | None = None
    quote_identifier: Callable[[str], str] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.name

    # --- names ---------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def quote(self, name: str) -> str:
        """One identifier, always quoted (never pasted as it is)."""
        if self.quote_identifier is not None:
            return self.quote_identifier(name)
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
        text = text.replace("'", "''")
        if self.backslash_escapes:
            text = text.replace("\\", "\\\\")
        return f"'{text}'"

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
        if self.upsert_style == "on_duplicate_key":
            # MySQL/MariaDB have no ON CONFLICT; the primary key decides the duplicate.
            if not_older is None:
                return f"{insert} ON DUPLICATE KEY UPDATE " + ", ".join(
                    f"{c} = VALUES({c})" for c in updated
                )
            n = not_older
            ok = f"{n} <= VALUES({n}) OR VALUES({n}) = 0"
            # Assignments run left to right: the fence column goes last, so every test
            # before it reads the stored value.
            cols = [c for c in updated if c != n] + [n]
            return f"{insert} ON DUPLICATE KEY UPDATE " + ", ".join(
                f"{c} = IF({ok}, VALUES({c}), {c})" for c in cols
            )
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
        """Statements that swap in several tables, each ``(target, staging, renamed, old)``.

        Where the engine swaps with ``RENAME TABLE``, one statement renames them all, so
        the tables change together (it is atomic for several tables).
        """
        if not self.swap_by_rename_table:
            return [
                statement
                for target, staging, renamed, _ in tables
                for statement in (
                    f"DROP TABLE IF EXISTS {target}",
                    f"ALTER TABLE {staging} RENAME TO {renamed}",
                )
            ]
        # MySQL commits DDL implicitly, so a DROP then RENAME would leave a moment with
        # no table; one RENAME TABLE of all of them is atomic.
        renames: list[str] = []
        drops: list[str] = []
        for target, staging, _, old in tables:
            if old is not None:
                renames.append(f"{target} TO {old}")
                drops.append(f"DROP TABLE {old}")
            renames.append(f"{staging} TO {target}")
        return [f"RENAME TABLE {', '.join(renames)}", *drops] if renames else []

    def duplicate_key_sql(self, table: str, keys: Iterable[str]) -> str:
        """A query for one key that occurs more than once in ``table`` (no row: unique).

        Both forms count NULL keys as equal to each other.
        """
        q = self.quote
        pk = list(keys)
        cols = ", ".join(q(k) for k in pk)
        if not self.sorted_unique_check:
            return f"SELECT {cols} FROM {table} GROUP BY {cols} HAVING COUNT(*) > 1 LIMIT 1"
        # DuckDB: sorting and comparing each key with the one before it is about three times
        # faster than grouping on keys that arrive in order (exports usually do), needs less
        # memory, and is no slower on shuffled keys. The first row has no previous one: its
        # lag() is NULL like a NULL key's, hence _row.
        previous = ", ".join(f"lag({q(k)}) OVER w AS {q(f'_prev_{i}')}" for i, k in enumerate(pk))
        same = " AND ".join(
            f"{q(k)} IS NOT DISTINCT FROM {q(f'_prev_{i}')}" for i, k in enumerate(pk)
        )
        return (
            f"SELECT {cols} FROM (SELECT {cols}, {previous}, row_number() OVER w AS {q('_row')} "
            f"FROM {table} WINDOW w AS (ORDER BY {cols})) WHERE {q('_row')} > 1 AND {same} LIMIT 1"
        )

    # --- driver connections --------------------------------------------------------------
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
        # A DuckDB connection's cursor() is another connection, outside the transaction.
        cur = raw if self.connection_is_cursor else raw.cursor()
        total = 0
        try:
            for batch in batches:
                if batch:
                    self._insert_batch(cur, table, columns, batch)
                total += len(batch)
                after_batch()
        finally:
            if cur is not raw:
                cur.close()
        return total

    def load_statement(self, table: str, columns: Sequence[str]) -> str:
        """The statement ``load_rows`` runs for each batch, as it reads in a SQL file."""
        col_list = ", ".join(self.quote(c) for c in columns)
        if self.bulk_load == "copy":
            sql = f"COPY {table} ({col_list}) FROM STDIN"
        elif self.insert_by_unnest:
            sql = (
                f"INSERT INTO {table} ({col_list}) SELECT {', '.join(['unnest(?)'] * len(columns))}"
            )
        else:
            sql = f"INSERT INTO {table} ({col_list}) VALUES ({self.placeholders(len(columns))})"
        return f"-- once per batch of rows:\n{sql}"

    def _insert_batch(
        self, cur: Any, table: str, columns: Sequence[str], batch: Sequence[tuple[Any, ...]]
    ) -> None:
        col_list = ", ".join(self.quote(c) for c in columns)
        if self.bulk_load == "copy":
            # PostgreSQL: COPY FROM STDIN streams rows without a statement per row (psycopg 3
            # encodes each value by its Python type); one COPY per batch leaves the
            # connection free between batches.
            with cur.copy(f"COPY {table} ({col_list}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        elif self.insert_by_unnest:
            # DuckDB: executemany runs about 1,500 rows a second; a Python list binds as one
            # LIST value, and unnest() of each column's list inserts the batch at once.
            picks = ", ".join(["unnest(?)"] * len(columns))
            cur.execute(
                f"INSERT INTO {table} ({col_list}) SELECT {picks}",
                [list(col) for col in zip(*batch, strict=True)],
            )
        else:
            row_sql = f"({self.placeholders(len(columns))})"
            per = max(1, min(self.rows_per_insert, _MAX_PARAMETERS // len(columns)))
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


#: Bound parameters per statement that every SQLite build accepts (older ones stop at 999).
_MAX_PARAMETERS = 999


_SQLITE = Dialect(
    "sqlite",
    column_types=_types("TEXT", "INTEGER", "REAL", "NUMERIC", "BOOLEAN", "DATE", "TIMESTAMP"),
    metadata_types=_kinds("BIGINT", "INTEGER", "TEXT", "TEXT", "DATETIME"),
    transactional_ddl=True,
    # Takes the write lock at once, so DDL and the writes after it are one transaction and
    # two writers queue instead of deadlocking.
    begin_statement="BEGIN IMMEDIATE",
    rows_per_insert=256,
    typed_values_as_text=True,
    single_writer=True,
    prefers_lookup_index=True,  # SQLite takes the lookup index, which saves hashing
    datetime_as_text=True,
    driver_begins_lazily=True,
    cancel_method="interrupt",
    autocommit_style="isolation_none",
    tables_query="SELECT name FROM sqlite_master WHERE type = 'table'",
    primary_key_query="SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk",
    # WAL lets readers go on beside a writer; the busy wait is bounded.
    connect_statements=(
        (f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}", False),
        ("PRAGMA journal_mode = WAL", True),
        ("PRAGMA synchronous = NORMAL", False),
    ),
    lock_timeout_seconds=SQLITE_BUSY_TIMEOUT_MS / 1000,
)

_DUCKDB = Dialect(
    "duckdb",
    metadata_types=_kinds("BIGINT", "INTEGER", "TEXT", "TEXT", "TIMESTAMP WITHOUT TIME ZONE"),
    has_schemas=True,
    transactional_ddl=True,
    begin_statement="BEGIN TRANSACTION",
    bulk_load="read_file",
    insert_by_unnest=True,
    connection_is_cursor=True,
    sorted_unique_check=True,
    cancel_method="interrupt",
    tables_query=(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
        "AND database_name = current_database()"
    ),
    primary_key_query=(
        "SELECT unnest(constraint_column_names) FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY' "
        "AND database_name = current_database()"
    ),
)

_POSTGRESQL = Dialect(
    "postgresql",
    aliases=("postgres",),
    column_types=_types(
        "TEXT", "BIGINT", "DOUBLE PRECISION", "NUMERIC(38, 10)", "BOOLEAN", "DATE", "TIMESTAMP"
    ),
    has_schemas=True,
    transactional_ddl=True,
    paramstyle="format",
    bulk_load="copy",
    analyze_before_key_check=True,
    locking_read=" FOR UPDATE",
    cancel_method="cancel",
    autocommit_style="attribute",
    is_server=True,
)

_MYSQL = Dialect(
    "mysql",
    aliases=("mariadb",),
    # DATETIME(6): microseconds, as the other engines keep them.
    column_types=_types(
        "TEXT", "BIGINT", "DOUBLE", "DECIMAL(38, 10)", "BOOLEAN", "DATE", "DATETIME(6)"
    ),
    identifier_quote="`",
    backslash_escapes=True,
    begin_statement="START TRANSACTION",
    paramstyle="format",
    upsert_style="on_duplicate_key",
    locking_read=" FOR UPDATE",
    swap_by_rename_table=True,
    index_names_per_table=True,
    autocommit_style="method",
    table_options_prefix="mysql",
    long_text_length=2**32 - 1,
    is_server=True,
)

#: The engines qarion-etl is tested on.
DIALECTS: tuple[Dialect, ...] = (_DUCKDB, _SQLITE, _POSTGRESQL, _MYSQL)
#: What an engine not listed gets (ANSI quoting, DuckDB's type names, no schemas).
GENERIC = Dialect("generic")

_BY_NAME: dict[str, Dialect] = {n: d for d in DIALECTS for n in d.names}


def known_dialect(name: str) -> Dialect | None:
    """The dialect called ``name`` or one of its aliases, if it is one of ``DIALECTS``."""
    return _BY_NAME.get(name.lower())


def dialect_named(name: str) -> Dialect:
    """The dialect called ``name`` or one of its aliases; ``GENERIC`` under that name otherwise."""
    found = known_dialect(name)
    return found if found is not None else replace(GENERIC, name=name.lower())


def dialect_of_url(url: str) -> Dialect:
    """The dialect a database URL names (``postgresql+psycopg://…`` is ``postgresql``)."""
    scheme = url.split(":", 1)[0]
    return dialect_named(scheme.split("+", 1)[0])
