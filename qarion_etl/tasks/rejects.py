"""The rejects table of a quarantining ingestion: ``<target>__rejects``.

It sits in the target's namespace and is staged and published with the landing table
(``db.materialize.publish_all``): when the load fails, neither table changes. A
``FULL_REFRESH`` replaces it (it describes the file now loaded, even when that file had
no bad row); an ``INCREMENTAL`` load appends to it, and ``batch_id`` tells the loads
apart. Its columns are ``bad_rows.REJECTS_COLUMNS``: ``source_file`` (the path as the
flow wrote it), ``line``, ``column_name`` (empty for a problem of the whole row),
``reason``, ``raw_text`` (the row as it is in the file) and ``batch_id``.

``EngineRejects`` takes the rows an engine refused while reading a file itself
(``db.loading.Rejections``) into the task's bad rows, and quarantines them.
"""

from __future__ import annotations

from collections.abc import Sequence

from qarion_etl.db.connection import Connection
from qarion_etl.db.loading import RejectedRow
from qarion_etl.db.materialize import Stage
from qarion_etl.tasks.bad_rows import NAMED_ROWS, REJECTS_COLUMNS, BadRow, BadRows


class RejectsWriter:
    """Writes bad rows to the staging table of a rejects table, created on construction."""

    def __init__(self, conn: Connection, stage: Stage, shown: str, batch_id: int) -> None:
        self.conn = conn
        self.stage = stage
        self.shown = shown
        self.batch_id = batch_id
        self.written = 0
        d = stage.ns.db.dialect
        cols = ", ".join(f"{d.quote(n)} {d.sql_type(t)}" for n, t in REJECTS_COLUMNS)
        conn.exec_driver_sql(f"CREATE TABLE {stage.table} ({cols})")

    def write(self, rows: list[BadRow]) -> None:
        """Add ``rows`` to the staged rejects."""
        if not rows:
            return
        records = [r.record(self.shown, self.batch_id) for r in rows]
        self.stage.ns.db.dialect.load_rows(
            self.conn.raw, self.stage.table, [n for n, _ in REJECTS_COLUMNS], [records]
        )
        self.written += len(rows)


class EngineRejects:
    """The rows an engine refused, as bad rows of the task (``db.loading.Rejections``).

    Every refused row is wanted only when they are quarantined and the task survives
    them; otherwise the first ones name the problem and the rest are counted.
    """

    named = NAMED_ROWS

    def __init__(self, bad: BadRows, writer: RejectsWriter | None) -> None:
        self.bad = bad
        self.writer = writer

    def wanted(self, total: int) -> bool:
        tolerated = self.bad.policy.tolerated
        return self.writer is not None and (tolerated is None or total <= tolerated)

    def first(self, rows: Sequence[RejectedRow], total: int) -> None:
        self.bad.add_counted([BadRow(*r) for r in rows], total)

    def add(self, rows: Sequence[RejectedRow]) -> None:
        for r in rows:
            self.bad.add(BadRow(*r))
        if self.writer is not None:
            self.writer.write(self.bad.drain())
