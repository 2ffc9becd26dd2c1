"""Large-value offload for the database backend.

With ``offload_threshold_bytes`` and ``offload_to`` in ``backend_config``, a value whose
stored text is larger than the threshold is written to an object store (an S3 bucket or
a local folder) and its row keeps an explicit reference instead::

    value_type  "ref:json"                       "ref:" + the value's own type
    value       {"ref": "qarion-xcom-offload/1", "store": "s3",
                 "location": "s3://bucket/xcom-offload/flow/run=r/batch=1/task/key.<id>.<ns>.json",
                 "size": 734003, "sha256": "…"}

Only the ``ref:`` type marks a reference: a pushed value that happens to look like a
path or like this document is stored and returned as it is. Pulls follow the reference
(and check the sha256); listings show the size and the location from the row without
touching the object store; ``clear`` removes the rows, then their objects. Each push
writes a new object name, so a replaced value's object is removed only after the row
that replaced it is committed (and a rolled-back batch removes the objects it wrote).

``max_value_bytes`` still applies: raise it to let larger values through.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import ConfigError, StoreUnavailable
from qarion_etl.xcom.backends import _naming as naming
from qarion_etl.xcom.base import BaseXCom, light_listing
from qarion_etl.xcom.records import XComQuery, XComRecord

if TYPE_CHECKING:
    from qarion_etl.xcom.backends._blobs import BlobStore

REF_PREFIX = "ref:"
ENVELOPE = "qarion-xcom-offload/1"
_LIST_READ_CHARS = 2048  # enough of a row for the longest reference


@dataclass(frozen=True, slots=True)
class OffloadRef:
    """The reference a row keeps for an offloaded value."""

    store: str
    location: str
    size: int
    sha256: str

    def to_text(self) -> str:
        return json.dumps(
            {"ref": ENVELOPE, "store": self.store, "location": self.location,
             "size": self.size, "sha256": self.sha256},
            ensure_ascii=False,
        )  # fmt: skip

    @classmethod
    def from_text(cls, text: str, where: str) -> OffloadRef:
        try:
            doc = json.loads(text)
            if doc.get("ref") != ENVELOPE:
                raise ValueError(f"unknown reference format {doc.get('ref')!r}")
            return cls(
                str(doc["store"]), str(doc["location"]), int(doc["size"]), str(doc["sha256"])
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreUnavailable(f"{where}: unreadable offload reference: {exc}") from None


class OffloadPreview(str):
    """The listing text of an offloaded value: its location (nothing is downloaded)."""

    ref: OffloadRef

    def __new__(cls, ref: OffloadRef) -> OffloadPreview:
        obj = super().__new__(cls, ref.location)
        obj.ref = ref
        return obj


def _same_identity(store: Any, r: XComRecord) -> list[XComRecord]:
    """The stored record with ``r``'s identity (a query's missing run or batch means "any",
    so such a lookup lists and compares identities)."""
    q = XComQuery(r.flow_id, r.task_id, r.key, r.dag_run_id, r.batch_id)
    if r.dag_run_id is not None and r.batch_id is not None:
        found = store.get_record(q)
        return [found] if found is not None else []
    rows = store.list_records(q, limit=None, preview_chars=_LIST_READ_CHARS)
    return [old for old in rows if old.identity == r.identity]


def _where(r: XComRecord) -> str:
    return f"XCom {r.flow_id}/{r.task_id}/{r.key}"


class OffloadMixin(BaseXCom):
    """Adds ``offload_threshold_bytes``/``offload_to`` to a table-backed XCom backend.

    Without both options every method is the table's own, unchanged.
    """

    offload_threshold_bytes: int | None = None
    offload_store: BlobStore | None = None

    def configure_offload(
        self,
        threshold: int | None,
        offload_to: Mapping[str, Any] | None,
        *,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        """Turn offload on (both given) or leave it off (neither given).

        Raises:
            ConfigError: only one of the two options, or a bad threshold or store.
        """
        if threshold is None and offload_to is None:
            return
        if threshold is None or offload_to is None:
            raise ConfigError(
                "[xcom].backend_config: offload needs both 'offload_threshold_bytes' and 'offload_to'"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ConfigError(
                "[xcom].backend_config.offload_threshold_bytes must be a non-negative integer"
            )
        from qarion_etl.xcom.backends._blobs import build_blob_store  # only when offloading

        self.offload_store = build_blob_store(offload_to, root=root)
        self.offload_threshold_bytes = threshold
        self._pending = threading.local()

    def describe(self) -> str:
        """The table, and where large values go."""
        where = f"table {self.table_name}"
        if self.offload_store is None:
            return where
        return f"{where}; values over {self.offload_threshold_bytes} bytes to {self.offload_store.describe()}"

    # --- references --------------------------------------------------------------------
    def _blob_name(self, r: XComRecord) -> str:
        return (
            f"{naming.encode_segment(r.flow_id)}/run={naming.encode_optional(r.dag_run_id)}"
            f"/batch={naming.encode_optional(r.batch_id)}/{naming.encode_segment(r.task_id)}"
            f"/{naming.encode_segment(r.key, 120)}.{r.identity[:12]}.{r.pushed_ns}.json"
        )

    def _ref(self, r: XComRecord) -> OffloadRef | None:
        if isinstance(r.value_type, str) and r.value_type.startswith(REF_PREFIX):
            return OffloadRef.from_text(str(r.value), _where(r))
        return None

    def _follow(self, r: XComRecord | None) -> XComRecord | None:
        if r is None or self.offload_store is None:
            return r
        ref = self._ref(r)
        if ref is None:
            return r
        data = self.offload_store.get(ref.location)
        if data is None or hashlib.sha256(data).hexdigest() != ref.sha256:
            problem = "is missing" if data is None else "does not match its checksum"
            raise StoreUnavailable(f"{_where(r)}: offloaded value at {ref.location} {problem}")
        return XComRecord(
            r.flow_id, r.task_id, r.key, data.decode("utf-8", "surrogatepass"),
            r.value_type[len(REF_PREFIX):], r.dag_run_id, r.batch_id, r.size, r.pushed_ns,
        )  # fmt: skip

    def _existing_refs(self, records: Sequence[XComRecord]) -> list[OffloadRef]:
        out = []
        for r in records:
            for old in _same_identity(super(), r):
                ref = self._ref(old)
                if ref is not None:
                    out.append(ref)
        return out

    # --- deferred object removal (after commit) ----------------------------------------
    def _state(self) -> Any:
        st = self._pending
        if not hasattr(st, "depth"):
            st.depth, st.written, st.stale = 0, [], []
        return st

    def _after_write(self, written: list[str], stale: list[str]) -> None:
        st = self._state()
        if st.depth:
            st.written += written
            st.stale += stale
        elif stale and self.offload_store is not None:
            self.offload_store.delete(stale)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.offload_store is None:
            with super().transaction():
                yield
            return
        st = self._state()
        st.depth += 1
        ok = False
        try:
            with super().transaction():
                yield
            ok = True
        finally:
            st.depth -= 1
            if st.depth == 0:
                doomed = st.stale if ok else st.written
                st.written, st.stale = [], []
                if doomed:
                    self.offload_store.delete(doomed)

    # --- storage primitives ------------------------------------------------------------
    def set_records(self, records: Sequence[XComRecord]) -> None:
        store, limit = self.offload_store, self.offload_threshold_bytes
        if store is None or limit is None:
            super().set_records(records)
            return
        old = self._existing_refs(records)
        rows, written = [], []
        for r in records:
            if r.size <= limit:
                rows.append(r)
                continue
            data = str(r.value).encode("utf-8", "surrogatepass")
            location = store.put(self._blob_name(r), data)
            written.append(location)
            ref = OffloadRef(store.kind, location, r.size, hashlib.sha256(data).hexdigest())
            rows.append(
                XComRecord(
                    r.flow_id,
                    r.task_id,
                    r.key,
                    ref.to_text(),
                    REF_PREFIX + r.value_type,
                    r.dag_run_id,
                    r.batch_id,
                    r.size,
                    r.pushed_ns,
                )  # fmt: skip
            )
        try:
            super().set_records(rows)
        except BaseException:
            if written:
                store.delete(written)
            raise
        self._after_write(written, [o.location for o in old if o.location not in written])

    def get_record(self, query: XComQuery) -> XComRecord | None:
        return self._follow(super().get_record(query))

    def get_records(self, query: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        found = super().get_records(query, task_ids)
        if self.offload_store is None:
            return found
        return {t: r for t, r in ((t, self._follow(r)) for t, r in found.items()) if r is not None}

    def list_records(
        self, query: XComQuery, *, limit: int | None = None, preview_chars: int | None = 60
    ) -> list[XComRecord]:
        if self.offload_store is None or preview_chars is None:  # whole rows: envelopes as stored
            return super().list_records(query, limit=limit, preview_chars=preview_chars)
        rows = super().list_records(
            query, limit=limit, preview_chars=max(preview_chars, _LIST_READ_CHARS)
        )
        for r in rows:
            ref = self._ref(r) if not r.truncated else None
            if ref is not None:
                r.value, r.value_type, r.truncated = OffloadPreview(ref), r.value_type[4:], True
            else:
                text = str(r.value)
                r.truncated = r.truncated or len(text) > preview_chars
                r.value = text[:preview_chars]
        return rows

    @light_listing
    def orm_deserialize_value(self, record: Any = None) -> Any:
        """Offloaded values show their location and size; others the usual preview."""
        r: Any = self if record is None else record
        if isinstance(r.value, OffloadPreview):
            return f"offloaded {r.size} bytes: {r.value}"
        return super().orm_deserialize_value(r)

    def delete_records(self, query: XComQuery, *, older_than_ns: int | None = None) -> int:
        if self.offload_store is None:
            return super().delete_records(query, older_than_ns=older_than_ns)
        rows = super().list_records(query, limit=None, preview_chars=_LIST_READ_CHARS)
        doomed = [
            ref.location
            for r in rows
            if (older_than_ns is None or r.pushed_ns < older_than_ns)
            and (ref := self._ref(r)) is not None
        ]
        count = super().delete_records(query, older_than_ns=older_than_ns)
        self._after_write([], doomed)
        return count

    def close(self) -> None:
        if self.offload_store is not None:
            self.offload_store.close()
        super().close()
