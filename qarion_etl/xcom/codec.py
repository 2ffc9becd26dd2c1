"""From a value to a stored record and back, through a backend's hooks.

``XComService`` calls these four functions; each calls the backend's hook (its
``serialize_value``, ``deserialize_value``, ``orm_deserialize_value`` or ``clear``) with only
the keywords the override declares (``qarion_etl.xcom.hooks``), and turns a hook's own
failure into an error that names the backend, the task and the key:

- ``make_record``: check, serialise and size one value into an ``XComRecord``;
- ``load_value``: the value of a stored record;
- ``light_value``: the light form of a listed record;
- ``purge_replaced``: call the ``purge`` hook with the rows a push is about to replace;
- ``clear_values``: call the ``clear`` hook with the filters it declares.

A backend that keeps ``BaseXCom``'s own ``serialize_value`` and ``deserialize_value``
skips the hook machinery: a plain JSON value with no declared type goes straight to JSON
text, the common case of every push the runner makes.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from qarion_etl.errors import ClearNotSupported, QarionError, XComValueError, clip
from qarion_etl.xcom.base import BaseXCom, StoredValue, resolve_type
from qarion_etl.xcom.hooks import call_with_record, call_with_value, hook_spec
from qarion_etl.xcom.records import XComQuery, XComRecord, next_pushed_ns
from qarion_etl.xcom.values import (
    CorruptValue,
    XComValueType,
    binary_preview,
    check_size,
    coerce,
    decode_strict,
    dumps_json,
    encode,
)

#: Types stored as JSON exactly as they are when no type is declared.
_PLAIN_JSON = frozenset({dict, list, str, int, bool, type(None)})

# clear() filters and the Airflow names that mean the same.
_CLEAR_ALIASES = {
    "flow_id": ("flow_id", "dag_id"),
    "dag_run_id": ("dag_run_id", "run_id"),
    "task_id": ("task_id",),
    "key": ("key",),
    "batch_id": ("batch_id",),
    "older_than": ("older_than",),
}
_CLEAR_NAMES = {alias: name for name, aliases in _CLEAR_ALIASES.items() for alias in aliases}


def make_record(
    backend: BaseXCom,
    value: Any,
    *,
    task_id: str,
    key: str,
    flow_id: str,
    dag_run_id: str | None,
    batch_id: int | None,
    value_type: XComValueType | str | None = None,
) -> XComRecord:
    """Check, serialise (through the ``serialize_value`` hook) and size one value."""
    plain = backend.plain_serialize
    if value_type is None and plain and type(value) in _PLAIN_JSON:
        # The common case, a plain JSON value with no declared type: nothing to infer or
        # coerce (the result is the same as through the general path below).
        text, stored_type = dumps_json(value, task_id=task_id, key=key), XComValueType.JSON
    elif plain:
        vt = resolve_type(value, value_type, task_id, key)
        value = coerce(value, vt, task_id=task_id, key=key)
        text, stored_type = encode(value, vt, task_id=task_id, key=key), vt
    else:
        vt = resolve_type(value, value_type, task_id, key)
        value = coerce(value, vt, task_id=task_id, key=key)
        available = {
            "key": key,
            "task_id": task_id,
            "flow_id": flow_id,
            "dag_run_id": dag_run_id,
            "batch_id": batch_id,
            "value_type": vt,
            "dag_id": flow_id,
            "run_id": dag_run_id,
            "map_index": -1,
        }
        try:
            out = call_with_value(backend, "serialize_value", value, available)
        except QarionError:
            raise
        except Exception as exc:
            raise XComValueError(
                f"{type(backend).__name__}.serialize_value failed: {type(exc).__name__}: {exc}",
                task_id=task_id,
                key=key,
            ) from exc
        text, stored_type = _stored_form(out, vt, task_id, key)
    size = check_size(text, backend.max_value_bytes, task_id=task_id, key=key)
    return XComRecord(
        flow_id, task_id, key, text, stored_type.value, dag_run_id, batch_id, size, next_pushed_ns()
    )


def load_value(backend: BaseXCom, record: XComRecord) -> Any:
    """The value of a stored record (through the ``deserialize_value`` hook).

    Raises:
        XComValueError: the stored value cannot be read back (it was damaged or edited at
            rest, or the hook failed); the message names flow, run, task and key.
    """
    try:
        if backend.plain_deserialize:
            return decode_strict(record.value, record.value_type)
        return call_with_record(backend, "deserialize_value", record)
    except QarionError:
        raise
    except CorruptValue as exc:
        raise unreadable(record, str(exc)) from None
    except Exception as exc:
        reason = f"{type(backend).__name__}.deserialize_value failed: {type(exc).__name__}: {exc}"
        raise unreadable(record, reason) from exc


def unreadable(record: XComRecord, reason: str) -> XComValueError:
    """The error of a stored value that cannot be read, located by its whole identity."""
    run = "no run" if record.dag_run_id is None else f"run '{clip(record.dag_run_id)}'"
    batch = "" if record.batch_id is None else f", batch {record.batch_id}"
    return XComValueError(
        f"the stored value of flow '{clip(record.flow_id)}', {run}{batch} cannot be read: {reason}",
        task_id=record.task_id,
        key=record.key,
        hint="push it again, or remove it with: xcom clear",
    )


def light_value(backend: BaseXCom, record: XComRecord) -> Any:
    """The light form of a listed record (through ``orm_deserialize_value``).

    Bytes (a hook that hands back the value itself) become ``binary_preview`` text.
    """
    try:
        light = call_with_record(backend, "orm_deserialize_value", record)
        if isinstance(light, bytes | bytearray | memoryview):
            return binary_preview(bytes(light), limit=backend.preview_chars)
        return light
    except QarionError:
        raise
    except Exception as exc:
        raise XComValueError(
            f"{type(backend).__name__}.orm_deserialize_value failed: {type(exc).__name__}: {exc}",
            task_id=record.task_id,
            key=record.key,
        ) from exc


def purge_replaced(backend: BaseXCom, records: Sequence[XComRecord]) -> None:
    """Before ``records`` are written: ``purge`` the stored values they replace.

    Only for a backend with a ``purge`` hook (Airflow 2.6+ habit: an object the old value
    referred to is removed before its row is replaced). A lookup with no run or batch
    matches any run, so replaced rows are found by comparing identities.
    """
    if backend.plain_purge:
        return
    replaced: list[XComRecord] = []
    for r in records:
        q = XComQuery(r.flow_id, r.task_id, r.key, r.dag_run_id, r.batch_id)
        stored = backend.list_records(q, limit=None, preview_chars=None)
        replaced.extend(old for old in stored if old.identity == r.identity)
    backend.purge_records(replaced)


def clear_values(
    backend: BaseXCom,
    *,
    flow_id: str | None = None,
    task_id: str | None = None,
    dag_run_id: str | None = None,
    batch_id: int | None = None,
    key: str | None = None,
    older_than: _dt.datetime | None = None,
    implied: Sequence[str] = (),
) -> int:
    """Call the backend's ``clear`` hook with the filters it declares.

    ``implied`` names given filters that the others already imply (a run has one batch):
    those are dropped for a ``clear`` that does not declare them.

    Raises:
        ClearNotSupported: a filter is given that this backend's ``clear`` cannot apply (it is
            never silently dropped, which would remove more than asked), or the hook
            requires a filter that is not given (Airflow's ``clear(*, dag_id, task_id,
            run_id)``).
        XComValueError: the hook itself failed.
    """
    given = {
        "flow_id": flow_id,
        "task_id": task_id,
        "dag_run_id": dag_run_id,
        "batch_id": batch_id,
        "key": key,
        "older_than": older_than,
    }
    spec = hook_spec(backend, "clear")
    kwargs: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        names = [n for n in _CLEAR_ALIASES[name] if spec.declares(n)]
        if not names:
            if name in implied:
                continue
            raise ClearNotSupported(type(backend).__name__, unsupported=name)
        kwargs[names[0]] = value
    if "map_index" in spec.required:
        kwargs["map_index"] = -1  # qarion-etl has no mapped tasks
    missing = sorted({_CLEAR_NAMES.get(n, n) for n in spec.required - set(kwargs) - {"session"}})
    if missing:
        raise ClearNotSupported(type(backend).__name__, required=missing)
    try:
        return int(backend.clear(**kwargs) or 0)
    except QarionError:
        raise
    except Exception as exc:
        raise XComValueError(
            f"{type(backend).__name__}.clear() failed: {type(exc).__name__}: {exc}"
        ) from exc


def _stored_form(out: Any, vt: XComValueType, task_id: str, key: str) -> tuple[str, XComValueType]:
    """What an overridden ``serialize_value`` returned, as stored text and its type."""
    if isinstance(out, StoredValue):
        return str(out), out.value_type
    if isinstance(out, str):
        return out, vt
    if isinstance(out, bytes | bytearray):
        try:
            return bytes(out).decode("utf-8"), vt
        except UnicodeDecodeError:
            raise XComValueError(
                "serialize_value returned bytes that are not UTF-8 text", task_id=task_id, key=key
            ) from None
    return dumps_json(out, task_id=task_id, key=key), XComValueType.JSON
