"""``MemoryXComBackend``: XComs in a dict. The reference implementation and test double.

It shows the whole storage contract of a backend that replaces the database: five
primitives over ``XComRecord`` and ``XComQuery``. Copy it to start a new backend. Values
live as long as the backend object, so it suits tests and single-process embedding only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from qarion_etl.xcom.base import BaseXCom
from qarion_etl.xcom.records import XComQuery, XComRecord, newest_first


class MemoryXComBackend(BaseXCom):
    """XComs kept in memory; thread-safe; nothing survives the process.

    Args:
        db_service: accepted for the common constructor shape and ignored.
        namespace: accepted and ignored.
    """

    def __init__(self, db_service: Any = None, *, namespace: str | None = None) -> None:
        super().__init__(None, namespace=namespace)
        self._lock = threading.RLock()
        self._records: dict[str, XComRecord] = {}

    def set_records(self, records: Sequence[XComRecord]) -> None:
        with self._lock:
            for record in records:
                self._records[record.identity] = record

    def _matching(self, query: XComQuery) -> list[XComRecord]:
        with self._lock:
            return [r for r in self._records.values() if query.matches(r)]

    def get_record(self, query: XComQuery) -> XComRecord | None:
        found = newest_first(self._matching(query))
        return found[0] if found else None

    def get_records(self, query: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        wanted = set(task_ids)
        out: dict[str, XComRecord] = {}
        for record in newest_first(self._matching(query)):
            if record.task_id in wanted and record.task_id not in out:
                out[record.task_id] = record
        return out

    def list_records(
        self, query: XComQuery, *, limit: int | None = None, preview_chars: int | None = 60
    ) -> list[XComRecord]:
        out = []
        for r in newest_first(self._matching(query))[:limit]:
            text = r.value if isinstance(r.value, str) else str(r.value)
            out.append(
                XComRecord(
                    r.flow_id,
                    r.task_id,
                    r.key,
                    text[:preview_chars],
                    r.value_type,
                    r.dag_run_id,
                    r.batch_id,
                    r.size,
                    r.pushed_ns,
                    truncated=preview_chars is not None and len(text) > preview_chars,
                )
            )
        return out

    def delete_records(self, query: XComQuery, *, older_than_ns: int | None = None) -> int:
        with self._lock:
            doomed = [
                ident
                for ident, r in self._records.items()
                if query.matches(r) and (older_than_ns is None or r.pushed_ns < older_than_ns)
            ]
            for ident in doomed:
                del self._records[ident]
        return len(doomed)

    def close(self) -> None:
        """Nothing to release; the values stay until the object is gone."""
