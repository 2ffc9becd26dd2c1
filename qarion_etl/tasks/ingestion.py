"""The ``ingestion`` task: load a CSV, JSON Lines or Parquet file into a landing table.

Each engine loads by its fastest proper path (its dialect's ``bulk_load``), into a staging
table that is swapped in at the end (``db.materialize.staged_write``):

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

from qarion_etl.db.connection import Connection
from qarion_etl.db.materialize import Stage, staged_write
from qarion_etl.errors import IngestError, QarionError
from qarion_etl.tasks.base import BaseTask, TaskContext
from qarion_etl.tasks.formats import InputFile
from qarion_etl.tasks.readers import Reader


class IngestionTask(BaseTask):
    """Load ``config.path`` (``config.format``) into ``target_dataset_id``."""

    def execute(self, ctx: TaskContext) -> dict[str, Any]:
        spec = self.spec
        cfg = spec.config
        raw_path = str(cfg["path"])
        path = ctx.resolve_path(raw_path)
        if not path.is_file():
            raise IngestError(f"input file not found (looked for {path})", path=raw_path)
        source = InputFile(
            path, raw_path, str(cfg.get("format", "csv")).lower(), cfg, ctx.flow.input.columns
        )
        target = spec.target_dataset_id
        assert target is not None
        pk = list(ctx.flow.input.primary_key)
        db = ctx.db
        dialect = db.dialect
        with (
            ctx.writing(),
            db.errors(),
            staged_write(db, ctx.namespace, target) as (conn, stage),
            ctx.interruptible(conn),
        ):
            if dialect.bulk_load == "read_file":
                rows = _read_file(conn, stage, source, ctx)
                _check_required(conn, stage, source)
            else:
                reader = source.reader((ctx.batch_id,), as_text=dialect.typed_values_as_text)
                _create_table(conn, stage, reader)
                rows = dialect.load_rows(
                    conn.raw,
                    stage.table,
                    [*reader.names, "batch_id"],
                    reader.batches,
                    after_batch=ctx.check_cancel,
                )
            ctx.check_cancel()
            if pk:
                _check_unique(conn, stage, pk, source)
            ctx.check_cancel()
            stage.publish(conn, ctx.processing_type, pk)
        return {"rows_loaded": rows, "target_dataset": target, "source_path": raw_path}


def _create_table(conn: Connection, stage: Stage, reader: Reader) -> None:
    d = stage.ns.db.dialect
    cols = [
        f"{d.quote(n)} {d.sql_type(t)}" for n, t in zip(reader.names, reader.types, strict=True)
    ]
    cols.append(f"{d.quote('batch_id')} {d.sql_type('integer')}")
    conn.exec_driver_sql(f"CREATE TABLE {stage.table} ({', '.join(cols)})")


def _read_file(conn: Connection, stage: Stage, source: InputFile, ctx: TaskContext) -> int:
    """The engine reads the file itself (DuckDB): rows never pass through Python."""
    sql = (
        f"CREATE TABLE {stage.table} AS SELECT *, CAST({int(ctx.batch_id)} AS BIGINT) AS batch_id "
        f"FROM {source.duckdb_source(stage.ns.db.dialect)}"
    )
    try:
        conn.exec_driver_sql(sql)
    except Exception as exc:
        ctx.check_cancel()  # interrupted, not refused
        # The engine refused a value: name the line and column the way the other engines do.
        source.locate_problem()
        raise QarionError(f"{source.shown}: cannot load: {_first_line(exc)}") from exc
    return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {stage.table}").scalar_one())


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_required(conn: Connection, stage: Stage, source: InputFile) -> None:
    """A file the engine read itself had no per-row checks: count missing required values."""
    required = [c.name for c in source.columns if c.required]
    if not required:
        return
    q = stage.ns.db.quote
    cond = " OR ".join(f"{q(c)} IS NULL" for c in required)
    bad = conn.exec_driver_sql(f"SELECT 1 FROM {stage.table} WHERE {cond} LIMIT 1").first()
    if bad is not None:
        source.locate_problem()
        raise IngestError(
            f"a required column ({', '.join(required)}) has missing values", path=source.shown
        )


def _check_unique(conn: Connection, stage: Stage, pk: list[str], source: InputFile) -> None:
    sql = stage.ns.db.dialect.duplicate_key_sql(stage.table, pk)
    dup = conn.exec_driver_sql(sql).first()
    if dup is None:
        return
    source.locate_problem(pk, tuple(dup))
    shown_key = ", ".join(f"{k}={v!r}" for k, v in zip(pk, dup, strict=False))
    raise IngestError(f"duplicate primary key ({shown_key})", path=source.shown)
