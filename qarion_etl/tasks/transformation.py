"""The ``transformation`` task: render ``config.sql`` and materialise the SELECT.

With a ``target_dataset_id`` the query result is written atomically (staging table, then
swap; ``FULL_REFRESH`` or ``INCREMENTAL`` like ingestion), or published as a view
(``materialized = "view"``); how each materialization writes is in ``materialized``. Without one the statement just
executes. When the result has exactly one row, that row's columns become fields of the
task result (``total_count``, ``avg_value`` …), so downstream templates can
``xcom_pull('calculate_stats', key='avg_value')``. On a name clash the runner's own
fields (``rows_written``, ``target_dataset``, ``status``, ``batch_id``,
``duration_seconds``, ``checks``) win.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qarion_etl.db.connection import Connection
from qarion_etl.db.materialize import INCREMENTAL, staged_write
from qarion_etl.errors import SqlError
from qarion_etl.tasks.base import BaseTask, TaskContext
from qarion_etl.tasks.checks import guard
from qarion_etl.tasks.materialized import (
    check_key,
    is_incremental,
    publish_table,
    upsert_key,
    write_view,
)

#: Result fields the runner owns; a one-row column with one of these names is not copied.
RESERVED_FIELDS = frozenset(
    {"rows_written", "target_dataset", "status", "batch_id", "duration_seconds", "checks"}
)


class TransformationTask(BaseTask):
    """Run ``config.sql`` (a SELECT) and write its rows to ``target_dataset_id``."""

    def execute(self, ctx: TaskContext) -> dict[str, Any]:
        if self.spec.materialized == "ephemeral":
            return ephemeral_result(self.spec.target_dataset_id)
        template = str(self.spec.config["sql"])
        if is_incremental(ctx):
            rendered = ctx.render(template, incremental=True)
        else:
            rendered = ctx.render(template)
        sql = rendered.strip().rstrip(";").strip()
        try:
            return self._run(ctx, sql)
        except SqlError as exc:
            if exc.path is not None:  # located already (a data check's own statement)
                raise
            # The line of the rendered SQL the driver points at, found in the flow file.
            lead = rendered[: len(rendered) - len(rendered.lstrip())].count("\n")
            at = None if exc.statement_line is None else exc.statement_line + lead
            exc.path = ctx.flow.shown_path
            exc.line = ctx.flow.sql_line(self.spec, _template_line(template, rendered, at) or 1)
            exc.task_id = self.spec.id
            raise

    def _run(self, ctx: TaskContext, sql: str) -> dict[str, Any]:
        target = self.spec.target_dataset_id
        if target is None:
            return self._execute_only(ctx, sql)
        if self.spec.materialized == "view":
            return write_view(ctx, target, sql)
        pk = upsert_key(ctx) if ctx.processing_type == INCREMENTAL else []
        with (
            ctx.writing(),
            ctx.db.errors(sql),
            staged_write(ctx.db, ctx.namespace, target) as (conn, stage),
            ctx.interruptible(conn),
        ):
            conn.exec_driver_sql(f"CREATE TABLE {stage.table} AS {sql}")
            head = conn.exec_driver_sql(f"SELECT * FROM {stage.table} LIMIT 2")
            columns = list(head.keys())
            first = head.fetchall()
            if len(first) < 2:
                rows = len(first)
            else:
                rows = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {stage.table}").scalar_one())
            check_key(ctx, pk, columns)
            checks = guard(ctx, conn, stage, pk)
            ctx.before_publish()
            publish_table(conn, stage, ctx.processing_type, pk)
        result: dict[str, Any] = {"rows_written": rows, "target_dataset": target}
        if rows == 1:
            result.update(row_fields(columns, first[0]))
        if checks:
            result["checks"] = checks
        return result

    def _execute_only(self, ctx: TaskContext, sql: str) -> dict[str, Any]:
        with (
            ctx.writing(),
            ctx.db.errors(sql),
            _transaction(ctx, sql) as conn,
            ctx.interruptible(conn),
        ):
            res = conn.exec_driver_sql(sql)
            result: dict[str, Any] = {"target_dataset": None}
            if res.returns_rows:
                columns = list(res.keys())
                fetched = res.fetchmany(2)
                rows = len(fetched) + (len(res.fetchall()) if len(fetched) == 2 else 0)
                result["rows_written"] = rows
                if rows == 1:
                    result.update(row_fields(columns, fetched[0]))
            else:
                result["rows_written"] = max(res.rowcount, 0)
        return result


def ephemeral_result(dataset: str | None) -> dict[str, Any]:
    """The result of an ephemeral task: nothing ran, nothing was written."""
    return {
        "target_dataset": dataset,
        "materialized": "ephemeral",
        "note": "ephemeral: nothing written; its SQL is inlined where it is ref'd",
    }


@contextmanager
def _transaction(ctx: TaskContext, sql: str) -> Iterator[Connection]:
    """A connection for the SQL of a task without a target: one statement runs alone (it is
    atomic by itself, and an explicit transaction doubles what a small query costs on
    DuckDB); several statements run in one transaction."""
    if ";" not in sql.strip().rstrip(";"):
        with ctx.db.connect() as conn:
            yield conn
        return
    with ctx.db.begin() as conn:
        yield conn


def _template_line(template: str, rendered: str, line: int | None) -> int | None:
    """The line of ``template`` that rendered as line ``line`` of ``rendered``.

    The same line when rendering kept the number of lines (pulls and names fill in their
    line); else the one template line whose text is that line's, if there is one.
    """
    if line is None:
        return None
    t_lines, r_lines = template.splitlines(), rendered.splitlines()
    if len(t_lines) == len(r_lines):
        return line if 1 <= line <= len(t_lines) else None
    if not 1 <= line <= len(r_lines):
        return None
    text = r_lines[line - 1].strip()
    hits = [i for i, t in enumerate(t_lines, start=1) if t.strip() == text and text]
    return hits[0] if len(hits) == 1 else None


def row_fields(columns: list[str], row: Any) -> dict[str, Any]:
    """The columns of a one-row result as JSON-friendly result fields."""
    out: dict[str, Any] = {}
    for name, value in zip(columns, row, strict=True):
        if name in RESERVED_FIELDS:
            continue
        out[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value() and abs(value) < 2**63:
            return int(value)
        as_float = float(value)
        return as_float if math.isfinite(as_float) else str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value
