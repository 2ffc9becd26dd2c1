"""PostgreSQL through psycopg 3: ``COPY`` in both directions of a load, schemas, ``FOR UPDATE``.

Rows from Python go in by ``COPY … FROM STDIN`` (``write_row``), and a clean CSV file goes
to the server as bytes for its own CSV parser (``CsvCopy``). Error kinds come from the
SQLSTATE: 42601 and the rest of class 42 -> ``syntax`` (42703, 42883, 42702 -> ``binder``;
42P01, 42P06, 3F000 -> ``catalog``), class 22 -> ``type``, 23 -> ``constraint``, 08 and
57P01-57P03 -> ``lost_connection``, 55P03 -> ``lock``, 57014 -> ``statement_timeout``,
40P01 -> ``deadlock``, 40001 -> ``serialization``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qarion_etl.db.engines.base import Dialect, FileDatabase, column_types_of, metadata_types_of
from qarion_etl.db.errors import driver_error
from qarion_etl.db.loading import (
    CsvOptions,
    FileLoad,
    FileSource,
    LoadWatch,
    Progress,
    ReadAgain,
    loaded,
    missing_required,
)
from qarion_etl.db.statements import SqlRunner, run_recorded

_EXACT = {
    "42601": "syntax",
    "42703": "binder",
    "42883": "binder",
    "42702": "binder",
    "42P01": "catalog",
    "42P06": "catalog",
    "3F000": "catalog",
    "55P03": "lock",
    "57014": "statement_timeout",
    "40P01": "deadlock",
    "40001": "serialization",
    "57P01": "lost_connection",
    "57P02": "lost_connection",
    "57P03": "lost_connection",
}
_CLASS = {"42": "syntax", "22": "type", "23": "constraint", "08": "lost_connection"}

#: Schema types the server's text input reads as Python's ``int``/``float``/``str`` do.
SAME_TEXT_FORMS = frozenset({"string", "integer", "float"})
#: How much of the file goes to the server per write.
CHUNK = 1 << 20


class PostgreSQL(Dialect):
    name = "postgresql"
    aliases = ("postgres",)
    column_types = column_types_of(
        "TEXT", "BIGINT", "DOUBLE PRECISION", "NUMERIC(38, 10)", "BOOLEAN", "DATE", "TIMESTAMP"
    )
    has_schemas = True
    transactional_ddl = True
    paramstyle = "format"
    bulk_load = "copy"
    locking_read = " FOR UPDATE"
    cancellable = True
    is_server = True
    # Served by psycopg itself (no SQLAlchemy: its import costs each process about 0.2 s);
    # the metadata tables are written as SQLAlchemy writes them for PostgreSQL.
    native_driver = "psycopg"
    metadata_types = metadata_types_of(
        "BIGINT", "INTEGER", "TEXT", "TEXT", "TIMESTAMP WITHOUT TIME ZONE"
    )
    tables_query = "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
    default_schema = "public"
    primary_key_query = (
        "SELECT k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name "
        "AND k.table_schema = c.table_schema AND k.table_name = c.table_name "
        "WHERE c.table_name = ? AND c.table_schema = current_schema() "
        "AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position"
    )

    def open_file(self, path: str) -> FileDatabase:
        return _Server(path)

    def file_load(self, source: FileSource) -> FileLoad | None:
        return CsvCopy(self, source) if copy_parses(source) else None

    def batch_statement(self, table: str, columns: Sequence[str]) -> str:
        return f"COPY {table} ({', '.join(self.quote(c) for c in columns)}) FROM STDIN"

    def insert_batch(
        self, cur: Any, table: str, columns: Sequence[str], batch: Sequence[tuple[Any, ...]]
    ) -> None:
        # COPY FROM STDIN streams rows without a statement per row (psycopg 3 encodes each
        # value by its Python type); one COPY per batch leaves the connection free between.
        with cur.copy(self.batch_statement(table, columns)) as copy:
            for row in batch:
                copy.write_row(row)

    def duplicate_key_statements(self, table: str, keys: Sequence[str]) -> list[str]:
        # Statistics first: on a table it knows nothing of, PostgreSQL plans a hash
        # aggregate for 200 groups, and spills.
        return [f"ANALYZE {table}", *super().duplicate_key_statements(table, keys)]

    def autocommit(self, raw: Any) -> None:
        raw.rollback()  # psycopg: the attribute can only change outside a transaction
        raw.autocommit = True

    def cancel(self, raw: Any) -> None:
        raw.cancel()  # psycopg: asks the server to cancel the running query

    def error_kind(self, error: BaseException) -> str:
        sqlstate = getattr(error, "sqlstate", None)
        if not isinstance(sqlstate, str):
            return "other"
        return _EXACT.get(sqlstate) or _CLASS.get(sqlstate[:2], "other")

    def is_conflict(self, error: BaseException) -> bool:
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        return sqlstate in ("40001", "40P01")  # psycopg 3 or psycopg2


class _Server(FileDatabase):
    """Connections to one PostgreSQL server (``url``: ``postgresql://…``), in autocommit."""

    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)


def copy_parses(source: FileSource) -> bool:
    """Whether PostgreSQL's CSV parser reads ``source`` as the checked reader does.

    That is: a UTF-8 CSV file with a one-character delimiter and quote, no escape
    character, ``null_values`` left at its default (an empty field, quoted or not, is NULL:
    ``FORCE_NULL``), and columns of type ``string``, ``integer`` or ``float``, whose text
    forms the server and Python read alike. Required values are checked by a query after.
    """
    if source.format != "csv":
        return False
    opts = CsvOptions.from_config(source.config)
    return (
        opts.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        and opts.escape is None
        and len(opts.delimiter) == 1
        and len(opts.quote) == 1
        and opts.null_values == ("",)
        and all(c.schema_type in SAME_TEXT_FORMS for c in source.columns)
    )


class CsvCopy(FileLoad):
    """A clean CSV file's bytes straight into ``COPY … FROM STDIN (FORMAT csv)``.

    Checking each row in Python and sending it with ``write_row`` costs about three times
    what the server takes to parse the same text. Most files are clean, so the server
    parses them; when it refuses the data (a value of the wrong type, a row of the wrong
    width, text that is not UTF-8: SQLSTATE class 22) the file is read again by the
    checked reader, which names every bad row (``ReadAgain``).
    """

    def __init__(self, dialect: Dialect, source: FileSource) -> None:
        self.dialect = dialect
        self.source = source

    def run(self, conn: SqlRunner, table: str, batch_id: int, watch: LoadWatch) -> int:
        d = self.dialect
        opts = CsvOptions.from_config(self.source.config)
        columns = self.source.file_columns()
        if any(t not in SAME_TEXT_FORMS for _, t in columns):
            raise ReadAgain("a column type the server reads differently")
        cols = [f"{d.quote(n)} {d.sql_type(t)}" for n, t in columns]
        cols.append(f"{d.quote('batch_id')} {d.sql_type('integer')} DEFAULT {int(batch_id)}")
        conn.exec_driver_sql(f"CREATE TABLE {table} ({', '.join(cols)})")
        sql = self._copy_sql(table, [n for n, _ in columns], opts)
        try:
            rows = int(
                run_recorded(
                    conn.statement_log, sql, None, lambda: self._send(conn.raw, sql, watch.progress)
                )
            )
        except Exception as exc:
            if d.error_kind(driver_error(exc)) != "type":  # not the data's fault: not ours
                raise
            # The caller leaves the staged write (rolled back) and reads the file again.
            raise ReadAgain(str(exc).splitlines()[0]) from exc
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {d.quote('batch_id')} DROP DEFAULT")
        if missing_required(conn, table, self.source, d.quote):
            raise ReadAgain("a required column has missing values")
        loaded(conn, rows, table)
        return rows

    def _copy_sql(self, table: str, names: Sequence[str], opts: CsvOptions) -> str:
        d = self.dialect
        col_list = ", ".join(d.quote(n) for n in names)
        options = [
            "FORMAT csv",
            f"HEADER {'true' if opts.header else 'false'}",
            f"DELIMITER {d.literal(opts.delimiter)}",
            f"QUOTE {d.literal(opts.quote)}",
            "ENCODING 'UTF8'",
            f"FORCE_NULL ({col_list})",
        ]
        return f"COPY {table} ({col_list}) FROM STDIN ({', '.join(options)})"

    def _send(self, raw: Any, sql: str, progress: Progress | None) -> int:
        """The file's bytes through ``COPY``, a chunk at a time; returns the rows copied."""
        path = self.source.path
        size = max(path.stat().st_size, 1)
        sent = 0
        with raw.cursor() as cur:
            with cur.copy(sql) as copy, path.open("rb") as fh:
                while data := fh.read(CHUNK):
                    copy.write(data)
                    sent += len(data)
                    if progress is not None:
                        progress(None, sent / size)
            return int(cur.rowcount)
