"""PostgreSQL parses a clean CSV file itself: its bytes go straight into ``COPY … (FORMAT csv)``.

Checking each row in Python and sending it with ``write_row`` costs about three times what
the server takes to parse the same text. Most files are clean, so when the server can
read a file exactly as the checked reader would, the loader sends the file's bytes and
lets the server parse them; only when it refuses the data (a value of the wrong type, a
row of the wrong width, text that is not UTF-8) is the file read again by the checked
reader, which names every bad row and applies ``on_bad_rows`` (``ReadAgain``, as for
DuckDB's own reader).

"Exactly as the checked reader would" limits this to UTF-8 files with a one-character
delimiter and quote and no escape character, ``null_values`` left at its default (an empty
field, quoted or not, is NULL: ``FORCE_NULL``), and columns of type ``string``,
``integer`` or ``float``, whose text forms the server and Python read alike. Required
values are checked by a query afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from qarion_etl.db.connection import Connection
from qarion_etl.db.errors import kind_of
from qarion_etl.db.materialize import Stage
from qarion_etl.db.statements import run_recorded
from qarion_etl.tasks.engine_read import ReadAgain, missing_required
from qarion_etl.tasks.formats import InputFile
from qarion_etl.tasks.readers import CsvOptions, column_types, csv_header

#: Schema types the server's text input reads as Python's ``int``/``float``/``str`` do.
SAME_TEXT_FORMS = frozenset({"string", "integer", "float"})
#: How much of the file goes to the server per write.
CHUNK = 1 << 20


def copy_parses(source: InputFile) -> bool:
    """Whether PostgreSQL's CSV parser reads ``source`` as the checked reader does."""
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


def copy_read(
    conn: Connection,
    stage: Stage,
    source: InputFile,
    batch_id: int,
    progress: Callable[[int | None, float | None], None] | None = None,
) -> int:
    """Create and fill ``stage.table`` from ``source`` by a server-parsed ``COPY``.

    Returns the rows loaded.

    Raises:
        ReadAgain: the server refused the data, or a required value is missing.
    """
    d = stage.ns.db.dialect
    opts = CsvOptions.from_config(source.config)
    names = csv_header(source.path, source.shown, opts)
    types = column_types(names, source.columns, source.shown)
    if any(t not in SAME_TEXT_FORMS for t in types):
        raise ReadAgain("a column type the server reads differently")
    cols = [f"{d.quote(n)} {d.sql_type(t)}" for n, t in zip(names, types, strict=True)]
    cols.append(f"{d.quote('batch_id')} {d.sql_type('integer')} DEFAULT {int(batch_id)}")
    conn.exec_driver_sql(f"CREATE TABLE {stage.table} ({', '.join(cols)})")
    col_list = ", ".join(d.quote(n) for n in names)
    options = [
        "FORMAT csv",
        f"HEADER {'true' if opts.header else 'false'}",
        f"DELIMITER {_literal(opts.delimiter)}",
        f"QUOTE {_literal(opts.quote)}",
        "ENCODING 'UTF8'",
        f"FORCE_NULL ({col_list})",
    ]
    sql = f"COPY {stage.table} ({col_list}) FROM STDIN ({', '.join(options)})"
    raw = conn.raw
    size = max(source.path.stat().st_size, 1)

    def send() -> int:
        sent = 0
        with raw.cursor() as cur:
            with cur.copy(sql) as copy, source.path.open("rb") as fh:
                while data := fh.read(CHUNK):
                    copy.write(data)
                    sent += len(data)
                    if progress is not None:
                        progress(None, sent / size)
            return int(cur.rowcount)

    try:
        rows = int(run_recorded(conn.statement_log, sql, None, send))
    except Exception as exc:
        if kind_of(exc, d) != "type":  # not the data's fault (SQLSTATE class 22): not ours
            raise
        # The caller leaves the staged write (rolled back) and reads the file again.
        raise ReadAgain(str(exc).splitlines()[0]) from exc
    conn.exec_driver_sql(
        f"ALTER TABLE {stage.table} ALTER COLUMN {d.quote('batch_id')} DROP DEFAULT"
    )
    if missing_required(conn, stage, source):
        raise ReadAgain("a required column has missing values")
    if conn.statement_log is not None:
        conn.statement_log.note(f"{rows:,} rows loaded into {stage.table}")
    return rows


def _literal(char: str) -> str:
    return "'" + char.replace("'", "''") + "'"
