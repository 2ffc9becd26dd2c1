"""``XComService``: push, pull, pull_many, clear and list over one backend.

The service fills in its defaults (flow, batch, run), checks identities, and hands
records to the backend. It holds no connection itself: the backend keeps one per thread
for its whole life, so a run pays for connecting once.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from qarion_etl.errors import IdentityError
from qarion_etl.xcom import codec
from qarion_etl.xcom.base import BaseXCom
from qarion_etl.xcom.records import (
    MISSING,
    XComEntry,
    XComQuery,
    XComRecord,
    check_batch,
    check_id,
    not_found,
)
from qarion_etl.xcom.values import XComValueType

__all__ = ["DEFAULT_KEY", "MISSING", "XComService"]

DEFAULT_KEY = "return_value"
_PUSH_FIELDS = frozenset(
    {"task_id", "value", "key", "value_type", "batch_id", "dag_run_id", "flow_id"}
)


class XComService:
    """Push and pull XCom values through a backend.

    Args:
        backend: any ``BaseXCom`` (``DatabaseXComBackend(db_service)``, ``MemoryXComBackend()``, …).
        default_flow_id: flow used when a call gives none.
        default_batch_id: batch used when a push or pull gives none.
        default_dag_run_id: run used when a push or pull gives none.

    Example::

        service = XComService(backend, default_flow_id="my_flow", default_batch_id=1)
        service.push(task_id="t", value={"rows": 10}, key="stats")
        service.pull(task_id="t", key="stats")      # {'rows': 10}
    """

    def __init__(
        self,
        backend: BaseXCom,
        default_flow_id: str | None = None,
        default_batch_id: int | None = None,
        default_dag_run_id: str | None = None,
    ) -> None:
        if not isinstance(backend, BaseXCom):
            raise TypeError(f"backend must be a BaseXCom, not {type(backend).__name__}")
        check_id("default_flow_id", default_flow_id, required=False)
        check_id("default_dag_run_id", default_dag_run_id, required=False)
        check_batch(default_batch_id)
        self.backend = backend
        self.default_flow_id = default_flow_id
        self.default_batch_id = default_batch_id
        self.default_dag_run_id = default_dag_run_id
        self._local = threading.local()  # per-thread buffer of batch() pushes

    def __repr__(self) -> str:
        return (
            f"XComService({self.backend!r}, default_flow_id={self.default_flow_id!r}, "
            f"default_batch_id={self.default_batch_id!r}, default_dag_run_id={self.default_dag_run_id!r})"
        )

    # --- writing -----------------------------------------------------------------------
    def push(
        self,
        task_id: str,
        value: Any,
        key: str = DEFAULT_KEY,
        value_type: XComValueType | str | None = None,
        batch_id: int | None = None,
        dag_run_id: str | None = None,
        flow_id: str | None = None,
    ) -> None:
        """Store ``value`` under (flow, task, key, run, batch), replacing an earlier push.

        Args:
            task_id: the task the value belongs to.
            value: any JSON-serialisable value, bytes, or ``None`` (stored explicitly).
            key: the value's name; default ``return_value``.
            value_type: an ``XComValueType`` (or its name); inferred when ``None``.
            batch_id, dag_run_id, flow_id: identity; the service's defaults when ``None``.

        Raises:
            XComValueError: the value does not fit its type, cannot be serialised or is
                larger than ``max_value_bytes``.
            IdentityError: an identity part is missing or malformed.
        """
        record = self._record(task_id, value, key, value_type, batch_id, dag_run_id, flow_id)
        pending = getattr(self._local, "pending", None)
        if pending is not None:  # inside batch(): written together at the end
            pending.append(record)
            return
        self._write([record])

    def push_many(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Push several values in one transaction (one ``executemany`` on a database).

        Args:
            items: mappings with ``push``'s arguments (``task_id`` and ``value`` required).

        Returns:
            How many values were pushed.
        """
        records = []
        record = self._record
        for item in items:
            if not _PUSH_FIELDS.issuperset(item):
                extra = sorted(set(item) - _PUSH_FIELDS)
                raise IdentityError(f"push_many: unknown field(s) {extra}")
            get = item.get
            records.append(
                record(
                    item["task_id"],
                    item["value"],
                    get("key", DEFAULT_KEY),
                    get("value_type"),
                    get("batch_id"),
                    get("dag_run_id"),
                    get("flow_id"),
                )
            )
        if records:
            self._write(records)
        return len(records)

    @contextmanager
    def batch(self) -> Iterator[XComService]:
        """Run the pushes (and pulls) inside the block in one transaction of the backend.

        Pushes made by this thread inside the block are checked at once and written together
        (one ``executemany``) when the block ends, or before any read of the service, so a
        pull inside the block sees them. An exception in the block writes none of them.

        Example::

            with service.batch():
                for i in range(1000):
                    service.push(task_id=f"t{i}", value=i)
        """
        outer = getattr(self._local, "pending", None) is None
        with self.backend.transaction():
            if outer:
                self._local.pending = []
            try:
                yield self
                if outer:
                    self._flush()
            finally:
                if outer:
                    self._local.pending = None

    def _flush(self) -> None:
        pending = getattr(self._local, "pending", None)
        if pending:
            records, pending[:] = list(pending), []
            self._write(records)

    def _write(self, records: list[XComRecord]) -> None:
        codec.purge_replaced(self.backend, records)  # only for a backend with a purge hook
        self.backend.set_records(records)

    def _record(
        self,
        task_id: str,
        value: Any,
        key: str,
        value_type: XComValueType | str | None,
        batch_id: int | None,
        dag_run_id: str | None,
        flow_id: str | None,
    ) -> XComRecord:
        check_id("task_id", task_id)
        check_id("key", key)
        if flow_id is None:
            flow = self.default_flow_id  # checked in __init__
            if flow is None:
                raise IdentityError("flow_id is required (pass it, or give the service a default)")
        else:
            check_id("flow_id", flow := flow_id)
        if dag_run_id is None:
            run = self.default_dag_run_id
        else:
            check_id("dag_run_id", run := dag_run_id)
        if batch_id is None:
            batch = self.default_batch_id
        else:
            check_batch(batch := batch_id)
        return codec.make_record(
            self.backend,
            value,
            task_id=task_id,
            key=key,
            flow_id=flow,
            dag_run_id=run,
            batch_id=batch,
            value_type=value_type,
        )

    # --- reading -----------------------------------------------------------------------
    def _query(
        self,
        task_id: str | None,
        key: str | None,
        batch_id: int | None,
        dag_run_id: str | None,
        flow_id: str | None,
        *,
        run_defaults: bool = True,
    ) -> XComQuery:
        """The lookup's filters; ``run_defaults=False`` (listings) applies the flow only."""
        if run_defaults:
            dag_run_id = dag_run_id if dag_run_id is not None else self.default_dag_run_id
            batch_id = batch_id if batch_id is not None else self.default_batch_id
        check_batch(batch_id)
        check_id("key", key, required=False)
        flow = flow_id if flow_id is not None else self.default_flow_id
        return XComQuery(flow, task_id, key, dag_run_id, batch_id)

    def pull(
        self,
        task_id: str,
        key: str = DEFAULT_KEY,
        batch_id: int | None = None,
        dag_run_id: str | None = None,
        flow_id: str | None = None,
        default: Any = None,
    ) -> Any:
        """The value pushed under the given identity parts (after defaults).

        Parts that are ``None`` with no default match anything; among several matches the
        most recently pushed wins.

        Args:
            task_id: the pushing task (always explicit).
            key: the value's name; default ``return_value``.
            batch_id, dag_run_id, flow_id: narrow the match; the service's defaults when ``None``.
            default: returned when nothing matches; pass ``MISSING`` to raise instead.

        Raises:
            XComNotFound: nothing matches and ``default`` is ``MISSING``.
        """
        check_id("task_id", task_id)
        query = self._query(task_id, key, batch_id, dag_run_id, flow_id)
        self._flush()
        record = self.backend.get_record(query)
        if record is None:
            if default is MISSING:
                raise not_found(query)
            return default
        return codec.load_value(self.backend, record)

    def get(
        self,
        task_id: str,
        key: str = DEFAULT_KEY,
        batch_id: int | None = None,
        dag_run_id: str | None = None,
        flow_id: str | None = None,
    ) -> Any:
        """Like ``pull`` but raises ``XComNotFound`` when nothing matches."""
        return self.pull(task_id, key, batch_id, dag_run_id, flow_id, default=MISSING)

    def pull_many(
        self,
        task_ids: Sequence[str],
        key: str = DEFAULT_KEY,
        batch_id: int | None = None,
        dag_run_id: str | None = None,
        flow_id: str | None = None,
        default: Any = None,
    ) -> dict[str, Any]:
        """``{task_id: value}`` for every requested task (``default`` where nothing matches)."""
        if isinstance(task_ids, str):
            task_ids = [task_ids]
        for tid in task_ids:
            check_id("task_id", tid)
        query = self._query(None, key, batch_id, dag_run_id, flow_id)
        self._flush()
        found = self.backend.get_records(query, list(task_ids))
        return {
            tid: codec.load_value(self.backend, found[tid]) if tid in found else default
            for tid in task_ids
        }

    # --- housekeeping ------------------------------------------------------------------
    def clear(
        self,
        flow_id: str | None = None,
        task_id: str | None = None,
        dag_run_id: str | None = None,
        batch_id: int | None = None,
        key: str | None = None,
        older_than: _dt.datetime | _dt.timedelta | None = None,
    ) -> int:
        """Remove the values matching every given filter and return how many were removed.

        Only the default flow applies here (not the default batch or run), so
        ``clear(flow_id="f")`` removes every value of flow ``f``.

        Args:
            flow_id, task_id, dag_run_id, batch_id, key: filters; ``None`` matches anything.
            older_than: a moment, or an age (``timedelta``): only values pushed before it.
        """
        check_batch(batch_id)
        check_id("key", key, required=False)
        if isinstance(older_than, _dt.timedelta):
            older_than = _dt.datetime.now(_dt.UTC) - older_than
        self._flush()
        return codec.clear_values(
            self.backend,
            flow_id=flow_id if flow_id is not None else self.default_flow_id,
            task_id=task_id,
            dag_run_id=dag_run_id,
            batch_id=batch_id,
            key=key,
            older_than=older_than,
            # A run has one batch: a clear that cannot filter by batch still clears the run's.
            implied=("batch_id",) if dag_run_id is not None else (),
        )

    def list(
        self,
        flow_id: str | None = None,
        task_id: str | None = None,
        dag_run_id: str | None = None,
        batch_id: int | None = None,
        key: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[XComEntry]:
        """Light entries (type, size, the light form; never full values), newest first.

        ``limit=None`` lists every match. The backend's ``orm_deserialize_value`` makes
        the light form: it gets each record as stored (a preview only when the hook is one
        that needs no more).
        """
        query = self._query(task_id, key, batch_id, dag_run_id, flow_id, run_defaults=False)
        self._flush()
        backend = self.backend
        preview_chars = backend.preview_chars if backend.light_listings else None
        records = backend.list_records(query, limit=limit, preview_chars=preview_chars)
        return [
            XComEntry(
                r.flow_id,
                r.task_id,
                r.key,
                r.dag_run_id,
                r.batch_id,
                r.value_type,
                r.size,
                r.created_at,
                codec.light_value(self.backend, r),
            )
            for r in records
        ]

    def count(
        self,
        flow_id: str | None = None,
        task_id: str | None = None,
        dag_run_id: str | None = None,
        batch_id: int | None = None,
        key: str | None = None,
    ) -> int:
        """How many values ``list`` with the same filters would list without a limit."""
        query = self._query(task_id, key, batch_id, dag_run_id, flow_id, run_defaults=False)
        self._flush()
        return self.backend.count_records(query)

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()

    def __enter__(self) -> XComService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
