"""The records an XCom backend stores, the filters it is queried with, and list entries."""

from __future__ import annotations

import datetime as _dt
import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from qarion_etl.errors import IdentityError, XComNotFound, clip

MAX_ID_LENGTH = 250

_clock_lock = threading.Lock()
_last_ns = 0


def next_pushed_ns() -> int:
    """Wall-clock nanoseconds, strictly increasing within this process (newest wins)."""
    global _last_ns
    now = time.time_ns()
    with _clock_lock:
        if now <= _last_ns:
            now = _last_ns + 1
        _last_ns = now
    return now


def check_id(what: str, value: Any, *, required: bool = True) -> None:
    """Reject ids the stores cannot hold: empty, too long, or containing NUL.

    Raises:
        IdentityError: the id is not usable.
    """
    if value is None:
        if required:
            raise IdentityError(f"{what} is required (pass it, or give the service a default)")
        return
    if not isinstance(value, str) or not value:
        raise IdentityError(f"{what} must be a non-empty string, not {clip(repr(value))}")
    if len(value) > MAX_ID_LENGTH or "\x00" in value:
        raise IdentityError(
            f"{what} must be at most {MAX_ID_LENGTH} characters without NUL: {value[:40]!r}…"
        )


#: Batch ids are stored as 64-bit integers on every engine.
BATCH_MIN, BATCH_MAX = -(2**63), 2**63 - 1


def check_batch(value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise IdentityError(f"batch_id must be an integer, not {clip(repr(value))}")
    if value is not None and not BATCH_MIN <= value <= BATCH_MAX:
        raise IdentityError(
            f"batch_id {clip(str(value), 30)} is out of range: batch ids are 64-bit integers"
            f" ({BATCH_MIN} to {BATCH_MAX})"
        )


def identity_key(
    flow_id: str, task_id: str, key: str, dag_run_id: str | None, batch_id: int | None
) -> str:
    """The 64-character identity of one XCom (sha256); a missing run or batch is part of it."""
    run = "\x01" if dag_run_id is None else "s" + dag_run_id
    batch = "\x01" if batch_id is None else "i" + str(batch_id)
    raw = "\x00".join((flow_id, task_id, key, run, batch))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class XComRecord:
    """One stored XCom, as handed to ``deserialize_value`` and ``orm_deserialize_value``.

    ``value`` is the stored text (what ``serialize_value`` returned). In listings it is only
    a prefix of it and ``truncated`` is true. Airflow's names are properties: ``dag_id``,
    ``run_id`` and ``map_index`` (always -1).
    """

    flow_id: str
    task_id: str
    key: str
    value: Any
    value_type: str = "json"
    dag_run_id: str | None = None
    batch_id: int | None = None
    size: int = 0
    pushed_ns: int = 0
    truncated: bool = False

    @property
    def dag_id(self) -> str:
        return self.flow_id

    @property
    def run_id(self) -> str | None:
        return self.dag_run_id

    @property
    def map_index(self) -> int:
        return -1

    @property
    def created_at(self) -> _dt.datetime:
        """When the value was pushed (UTC, aware)."""
        return _dt.datetime.fromtimestamp(self.pushed_ns / 1e9, tz=_dt.UTC)

    @property
    def timestamp(self) -> _dt.datetime:
        return self.created_at

    @property
    def identity(self) -> str:
        return identity_key(self.flow_id, self.task_id, self.key, self.dag_run_id, self.batch_id)


class XComQuery(NamedTuple):
    """Filters of a lookup; ``None`` means "any"."""

    flow_id: str | None = None
    task_id: str | None = None
    key: str | None = None
    dag_run_id: str | None = None
    batch_id: int | None = None

    def matches(self, record: XComRecord) -> bool:
        return (
            (self.flow_id is None or record.flow_id == self.flow_id)
            and (self.task_id is None or record.task_id == self.task_id)
            and (self.key is None or record.key == self.key)
            and (self.dag_run_id is None or record.dag_run_id == self.dag_run_id)
            and (self.batch_id is None or record.batch_id == self.batch_id)
        )

    @property
    def is_unscoped(self) -> bool:
        return all(v is None for v in self)


def newest_first(records: list[XComRecord]) -> list[XComRecord]:
    """Sort by push time, newest first (ties broken by identity, so the order is stable)."""
    return sorted(records, key=lambda r: (r.pushed_ns, r.identity), reverse=True)


@dataclass(frozen=True, slots=True)
class XComEntry:
    """The light form of one XCom for listings: never the full value."""

    flow_id: str
    task_id: str
    key: str
    dag_run_id: str | None
    batch_id: int | None
    value_type: str
    size: int
    created_at: _dt.datetime
    preview: Any

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``created_at`` as ISO-8601)."""
        return {
            "flow_id": self.flow_id,
            "dag_run_id": self.dag_run_id,
            "batch_id": self.batch_id,
            "task_id": self.task_id,
            "key": self.key,
            "value_type": self.value_type,
            "size": self.size,
            "created_at": self.created_at.isoformat(),
            "preview": self.preview
            if isinstance(self.preview, str | int | float | bool | type(None))
            else str(self.preview),
        }


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


#: Pass as ``default=`` to make ``pull`` raise ``XComNotFound`` instead of returning a default.
MISSING: Any = _Missing()


def not_found(q: XComQuery) -> XComNotFound:
    """The error of a lookup that found nothing, naming what it looked in."""
    where = [
        f"{name} {clip(value)!r}" if isinstance(value, str) else f"{name} {value!r}"
        for name, value in (("flow", q.flow_id), ("run", q.dag_run_id), ("batch", q.batch_id))
        if value is not None
    ]
    scope = f" ({', '.join(where)})" if where else ""
    return XComNotFound(f"no XCom value found{scope}", task_id=q.task_id, key=q.key)
