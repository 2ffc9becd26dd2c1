"""The ``ingestion`` task: load a CSV, JSON Lines or Parquet file into a landing table.

Each engine loads by its fastest proper path, into a staging table that is swapped in at
the end (``materialize.staged_write``):

- DuckDB reads the file itself (``read_csv``/``read_json``/``read_parquet`` with the
  declared column types) straight into the table; when it refuses a value, the file is
  re-read in Python to name the first bad line and column.
- PostgreSQL receives the checked rows through ``COPY … FROM STDIN`` (psycopg 3).
- SQLite and MySQL/MariaDB receive them in batched ``executemany`` calls of tuples.

Rows are streamed in batches; the whole file is never in memory. Every landing table gets
a ``batch_id`` column. Required columns and primary-key uniqueness are checked before the
swap, so a bad file leaves the previous table as it was.
"""

from __future__ import annotations

from typing import Any

from qarion_etl.errors import QarionError
from qarion_etl.materialize import Stage, sql_type, staged_write
from qarion_etl.tasks.base import BaseTask, TaskContext, database_errors
from qarion_etl.tasks.readers import (
    CsvOptions,
    IngestError,
    Reader,
    column_types,
    csv_header,
    jsonl_keys,
    locate_problem,
    open_reader,
)
from qarion_etl.templating import sql_literal


class IngestionTask(BaseTask):
    """Load ``config.path`` (``config.format``) into ``target_dataset_id``."""

    def execute(self, ctx: TaskContext) -> dict[str, Any]:
        spec = self.spec
        cfg = spec.config
        raw_path = str(cfg["path"])
        fmt = str(cfg.get("format", "csv")).lower()
        path = ctx.resolve_path(raw_path)
        if not path.is_file():
            raise IngestError(f"input file not found (looked for {path})", path=raw_path)
        target = spec.target_dataset_id
        assert target is not None
        declared = ctx.flow.input.columns
        pk = list(ctx.flow.input.primary_key)
        db = ctx.db
        with (
            ctx.writing(),
            database_errors(),
            staged_write(db, ctx.namespace, target) as (conn, stage),
            ctx.interruptible(conn),
        ):
            if db.dialect == "duckdb":
                rows = _duckdb_load(conn, stage, fmt, path, raw_path, cfg, ctx)
            else:
                reader = open_reader(
                    fmt,
                    path,
                    raw_path,
                    cfg,
                    declared,
                    extra=(ctx.batch_id,),
                    as_text=db.dialect == "sqlite",
                )
                _create_table(conn, stage, reader)
                rows = _load_rows(conn, stage, reader, ctx)
            ctx.check_cancel()
            _check_required(conn, stage, fmt, path, raw_path, cfg, ctx)
            if pk:
                _check_unique(conn, stage, pk, fmt, path, raw_path, cfg, ctx)
            ctx.check_cancel()
            stage.publish(conn, ctx.processing_type, pk)
        return {"rows_loaded": rows, "target_dataset": target, "source_path": raw_path}


def _create_table(conn: Any, stage: Stage, reader: Reader) -> None:
    db = stage.ns.db
    cols = [
        f"{db.quote(n)} {sql_type(db.dialect, t)}"
        for n, t in zip(reader.names, reader.types, strict=True)
    ]
    cols.append(f"{db.quote('batch_id')} {sql_type(db.dialect, 'integer')}")
    conn.exec_driver_sql(f"CREATE TABLE {stage.table} ({', '.join(cols)})")


def _load_rows(conn: Any, stage: Stage, reader: Reader, ctx: TaskContext) -> int:
    db = stage.ns.db
    names = [*reader.names, "batch_id"]
    col_list = ", ".join(db.quote(n) for n in names)
    raw = conn.connection.dbapi_connection
    cur = raw.cursor()
    total = 0
    try:
        if db.dialect == "postgresql":
            with cur.copy(f"COPY {stage.table} ({col_list}) FROM STDIN") as copy:
                for batch in reader.batches:
                    for row in batch:
                        copy.write_row(row)
                    total += len(batch)
                    ctx.check_cancel()
        else:
            mark = "?" if db.paramstyle == "qmark" else "%s"
            sql = (
                f"INSERT INTO {stage.table} ({col_list}) VALUES ({', '.join([mark] * len(names))})"
            )
            for batch in reader.batches:
                cur.executemany(sql, batch)
                total += len(batch)
                ctx.check_cancel()
    finally:
        cur.close()
    return total


def _duckdb_load(
    conn: Any, stage: Stage, fmt: str, path: Any, shown: str, cfg: Any, ctx: TaskContext
) -> int:
    declared = ctx.flow.input.columns
    lit = sql_literal(str(path))
    if fmt == "csv":
        opts = CsvOptions.from_config(cfg)
        names = csv_header(path, shown, opts)
        types = column_types(names, declared, shown)
        columns = ", ".join(
            f"{sql_literal(n)}: {sql_literal(sql_type('duckdb', t))}"
            for n, t in zip(names, types, strict=True)
        )
        args = [
            f"header = {str(opts.header).lower()}",
            f"delim = {sql_literal(opts.delimiter)}",
            f"quote = {sql_literal(opts.quote)}",
            f"columns = {{{columns}}}",
            "auto_detect = false",
            f"nullstr = [{', '.join(sql_literal(n) for n in opts.null_values)}]",
        ]
        if opts.escape:
            args.append(f"escape = {sql_literal(opts.escape)}")
        source = f"read_csv({lit}, {', '.join(args)})"
    elif fmt == "jsonl":
        keys = jsonl_keys(path, shown)
        names = [c.name for c in declared] + [
            k for k in keys if k not in {c.name for c in declared}
        ]
        by_name = {c.name: c.schema_type for c in declared}
        columns = ", ".join(
            f"{sql_literal(n)}: {sql_literal(sql_type('duckdb', by_name.get(n, 'string')))}"
            for n in names
        )
        source = f"read_json({lit}, format = 'newline_delimited', columns = {{{columns}}})"
    elif fmt == "parquet":
        source = f"read_parquet({lit})"
        if declared:
            casts = ", ".join(
                f"CAST({sql_quote(c.name)} AS {sql_type('duckdb', c.schema_type)}) AS {sql_quote(c.name)}"
                for c in declared
            )
            source = f"(SELECT * REPLACE ({casts}) FROM {source})"
    else:
        raise IngestError(f"unknown format {fmt!r} (known: csv, jsonl, parquet)")
    sql = f"CREATE TABLE {stage.table} AS SELECT *, CAST({int(ctx.batch_id)} AS BIGINT) AS batch_id FROM {source}"
    try:
        conn.exec_driver_sql(sql)
    except Exception as exc:
        ctx.check_cancel()  # interrupted, not refused
        # DuckDB refused a value: name the line and column the way the other engines do.
        locate_problem(fmt, path, shown, cfg, declared)
        raise QarionError(f"{shown}: cannot load: {_first_line(exc)}") from exc
    return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {stage.table}").scalar_one())


def sql_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_required(
    conn: Any, stage: Stage, fmt: str, path: Any, shown: str, cfg: Any, ctx: TaskContext
) -> None:
    """DuckDB loads without per-row checks: count missing required values in one query."""
    required = [c.name for c in ctx.flow.input.columns if c.required]
    if stage.ns.db.dialect != "duckdb" or not required:
        return
    q = stage.ns.db.quote
    cond = " OR ".join(f"{q(c)} IS NULL" for c in required)
    bad = conn.exec_driver_sql(f"SELECT 1 FROM {stage.table} WHERE {cond} LIMIT 1").first()
    if bad is not None:
        locate_problem(fmt, path, shown, cfg, ctx.flow.input.columns)
        raise IngestError(
            f"a required column ({', '.join(required)}) has missing values", path=shown
        )


def _check_unique(
    conn: Any,
    stage: Stage,
    pk: list[str],
    fmt: str,
    path: Any,
    shown: str,
    cfg: Any,
    ctx: TaskContext,
) -> None:
    dup = conn.exec_driver_sql(duplicate_key_sql(stage.ns.db, stage.table, pk)).first()
    if dup is None:
        return
    locate_problem(fmt, path, shown, cfg, ctx.flow.input.columns, pk, tuple(dup))
    shown_key = ", ".join(f"{k}={v!r}" for k, v in zip(pk, dup, strict=False))
    raise IngestError(f"duplicate primary key ({shown_key})", path=shown)


def duplicate_key_sql(db: Any, table: str, pk: list[str]) -> str:
    """A query for one key of ``pk`` that occurs more than once in ``table`` (no row: unique).

    On DuckDB the keys are sorted and each compared with the one before it: on keys that
    arrive in order (exports usually do) that is about three times faster than grouping and
    needs less memory, and it is no slower on shuffled keys. Elsewhere a ``GROUP BY``. Both
    count NULL keys as equal to each other.
    """
    q = db.quote
    keys = ", ".join(q(k) for k in pk)
    if db.dialect != "duckdb":
        return f"SELECT {keys} FROM {table} GROUP BY {keys} HAVING COUNT(*) > 1 LIMIT 1"
    # The first row has no previous one: its lag() is NULL like a NULL key's, hence _row.
    previous = ", ".join(f"lag({q(k)}) OVER w AS {q(f'_prev_{i}')}" for i, k in enumerate(pk))
    same = " AND ".join(f"{q(k)} IS NOT DISTINCT FROM {q(f'_prev_{i}')}" for i, k in enumerate(pk))
    return (
        f"SELECT {keys} FROM (SELECT {keys}, {previous}, row_number() OVER w AS {q('_row')} "
        f"FROM {table} WINDOW w AS (ORDER BY {keys})) WHERE {q('_row')} > 1 AND {same} LIMIT 1"
    )
