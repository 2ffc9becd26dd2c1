"""The ``ingestion`` task: load a CSV, JSON Lines or Parquet file into a landing table.

Each engine loads by its fastest proper path, into a staging table that is swapped in at
the end (``db.materialize``). The task asks the warehouse's dialect whether it reads the
file itself (``file_load``: DuckDB's own readers, PostgreSQL's ``COPY`` of a clean CSV
file); when it cannot, or gives up on a file whose bad rows it cannot name
(``ReadAgain``), the checked reader (``formats``) reads the file and the dialect loads its
rows (``insert_rows``: ``COPY … FROM STDIN``, an ``unnest`` per batch, or ``executemany``).
How each engine does it is in its module of ``db/engines``.

Rows are streamed in batches; the whole file is never in memory. Every landing table gets
a ``batch_id`` column. The whole file is checked before the swap: bad rows (``bad_rows``)
fail the task or are skipped or quarantined to ``<target>__rejects`` as
``[tasks.config] on_bad_rows`` says, within ``max_bad_rows``; required columns and
primary-key uniqueness are checked too (a duplicate key fails the task whatever
``on_bad_rows`` says: which of the two rows is the bad one is not for the loader to
guess). A failed load leaves the previous tables as they were.

The file's schema is the task's own ``primary_key`` and ``columns`` where it declares them,
else the flow's ``[input]`` (``Flow.input_for``); with no columns declared anywhere, the
types are inferred from the file (``inference``).

The result has ``rows_loaded``, ``rows_rejected`` (0 when none), ``target_dataset`` and
``source_path``, ``rejects_dataset`` when bad rows are quarantined, and
``inferred_columns`` (``[{"name": …, "schema_type": …}, …]``) when the types were inferred.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from qarion_etl.db.connection import Connection
from qarion_etl.db.loading import LoadWatch, ReadAgain
from qarion_etl.db.materialize import Stage, publish_all, staged_write
from qarion_etl.errors import InputMissing
from qarion_etl.tasks.bad_rows import BadRowPolicy, BadRows, rejects_table
from qarion_etl.tasks.base import BaseTask, TaskContext
from qarion_etl.tasks.checks import guard, load_guarantees
from qarion_etl.tasks.formats import InputFile
from qarion_etl.tasks.inference import shown_columns, with_inferred_columns
from qarion_etl.tasks.keys import KeyOrder, check_unique
from qarion_etl.tasks.readers import Reader
from qarion_etl.tasks.rejects import EngineRejects, RejectsWriter


class IngestionTask(BaseTask):
    """Load ``config.path`` (``config.format``) into ``target_dataset_id``."""

    #: The results of the task's checks (``tasks.checks.guard``) in the last load.
    checks: list[dict[str, Any]]

    def execute(self, ctx: TaskContext) -> dict[str, Any]:
        spec = self.spec
        cfg = spec.config
        raw_path = str(cfg["path"])
        path = ctx.resolve_path(raw_path)
        if not path.is_file():
            raise InputMissing(f"input file not found (looked for {path})", path=raw_path)
        schema = ctx.flow.input_for(spec)
        source = InputFile(
            path, raw_path, str(cfg.get("format", "csv")).lower(), cfg, schema.columns
        )
        source, inferred = with_inferred_columns(source)
        target = spec.target_dataset_id
        assert target is not None
        policy = BadRowPolicy.from_config(cfg)
        self.checks = []
        try:
            rows, rejected = self._load(ctx, source, target, policy, engine_reads=True)
        except ReadAgain:
            # The engine could not name what it refused: the checked reader reads the file.
            rows, rejected = self._load(ctx, source, target, policy, engine_reads=False)
        result: dict[str, Any] = {
            "rows_loaded": rows,
            "rows_rejected": rejected,
            "target_dataset": target,
            "source_path": raw_path,
        }
        if policy.quarantine:
            result["rejects_dataset"] = rejects_table(target)
        if inferred is not None:
            result["inferred_columns"] = shown_columns(inferred)
        if self.checks:
            result["checks"] = self.checks
        return result

    def _load(
        self,
        ctx: TaskContext,
        source: InputFile,
        target: str,
        policy: BadRowPolicy,
        *,
        engine_reads: bool,
    ) -> tuple[int, int]:
        """One staged write of the file; returns the rows loaded and the bad rows."""
        pk = list(ctx.flow.input_for(self.spec).primary_key)
        db = ctx.db
        bad = BadRows(source.shown, policy, by_row=not source.kind.knows_lines)
        also = [rejects_table(target)] if policy.quarantine else []
        with (
            ctx.writing(),
            db.errors(),
            staged_write(db, ctx.namespace, target, also) as (conn, stage),
            ctx.interruptible(conn),
        ):
            rejects = None
            if policy.quarantine:
                rejects = RejectsWriter(conn, stage.companion(also[0]), source.shown, ctx.batch_id)
            unique = False
            load = db.dialect.file_load(source) if engine_reads else None
            if load is not None:
                watch = LoadWatch(EngineRejects(bad, rejects), ctx.check_cancel, ctx.progress)
                rows = load.run(conn, stage.table, ctx.batch_id, watch)
            else:
                rows, unique = _load_rows(ctx, conn, stage, source, bad, rejects, pk)
            bad.check()
            if rejects is not None:
                rejects.write(bad.drain())
            ctx.check_cancel()
            if pk and not unique:
                check_unique(conn, stage, pk, source)
            required = [c.name for c in source.columns if c.required]
            self.checks = guard(ctx, conn, stage, pk, load_guarantees(pk, required))
            ctx.before_publish()
            writes = [(stage, ctx.processing_type, pk)]
            if rejects is not None:
                writes.append((rejects.stage, ctx.processing_type, []))
            publish_all(conn, writes)
        return rows, bad.count


def _load_rows(
    ctx: TaskContext,
    conn: Connection,
    stage: Stage,
    source: InputFile,
    bad: BadRows,
    rejects: RejectsWriter | None,
    pk: list[str],
) -> tuple[int, bool]:
    """Checked rows through the driver; returns the count and whether the keys are proven unique."""
    dialect = stage.ns.db.dialect
    reader = source.reader((ctx.batch_id,), bad=bad, bind_as=dialect.bind_as)
    _create_table(conn, stage, reader)
    batches = _while_hopeful(reader.batches, bad, ctx.check_cancel)
    if ctx.progress is not None:
        batches = _reporting(batches, ctx.progress, reader)
    order = KeyOrder.of(reader.names, reader.types, pk)
    if order is not None:
        batches = order.watch(batches)

    def after_batch() -> None:
        ctx.check_cancel()
        if rejects is not None:
            rejects.write(bad.drain())

    columns = [*reader.names, "batch_id"]
    rows = dialect.insert_rows(conn, stage.table, columns, batches, after_batch)
    return rows, order is not None and order.increasing


def _while_hopeful(
    batches: Iterable[list[tuple[Any, ...]]], bad: BadRows, check_cancel: Callable[[], None]
) -> Iterator[list[tuple[Any, ...]]]:
    """``batches`` until the bad rows fail the task; then the rest is only read, to count."""
    for batch in batches:
        if bad.doomed:
            check_cancel()
            continue
        yield batch


def _reporting(
    batches: Iterable[list[tuple[Any, ...]]],
    progress: Callable[[int | None, float | None], None],
    reader: Reader,
) -> Iterator[list[tuple[Any, ...]]]:
    """``batches``, unchanged, telling ``progress`` the rows so far after each."""
    rows = 0
    for batch in batches:
        yield batch
        rows += len(batch)
        progress(rows, None if reader.position is None else reader.position.fraction())


def _create_table(conn: Connection, stage: Stage, reader: Reader) -> None:
    d = stage.ns.db.dialect
    cols = [
        f"{d.quote(n)} {d.sql_type(t)}" for n, t in zip(reader.names, reader.types, strict=True)
    ]
    cols.append(f"{d.quote('batch_id')} {d.sql_type('integer')}")
    conn.exec_driver_sql(f"CREATE TABLE {stage.table} ({', '.join(cols)})")
