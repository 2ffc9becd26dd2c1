"""Calling a backend's hooks with only the keywords each override declares.

Backends ported from Airflow declare ``serialize_value(value, key=None, task_id=None,
dag_id=None, run_id=None, map_index=None)`` as a ``@staticmethod`` or ``@classmethod``;
ours use ``flow_id``, ``dag_run_id`` and ``batch_id``. The base inspects each override's
signature once per class and passes the names it declares (all of them when it takes
``**kwargs``). A hook written in Airflow's row style (``def orm_deserialize_value(self)``,
``def deserialize_value(self)``), which Airflow runs on the stored row, an instance of the
backend class, is called on such a row here too (``as_row``), so ``super()`` in it works.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_P = inspect.Parameter


@dataclass(frozen=True, slots=True)
class HookSpec:
    """How to call one hook of one backend class."""

    accepts_all: bool
    keywords: frozenset[str]
    first_positional: bool  # the first argument (value / record) can be passed positionally
    first_name: str | None
    record_as_self: bool  # Airflow's ``def orm_deserialize_value(self)`` on the row
    #: Keyword parameters without a default (a clear that needs ``task_id`` and ``run_id``).
    required: frozenset[str] = frozenset()

    def kwargs(self, available: dict[str, Any]) -> dict[str, Any]:
        if self.accepts_all:
            return available
        return {k: v for k, v in available.items() if k in self.keywords}

    def declares(self, name: str) -> bool:
        return self.accepts_all or name in self.keywords


_CACHE: dict[tuple[type, str], HookSpec] = {}


def hook_spec(owner: object, name: str) -> HookSpec:
    """The (cached) calling convention of ``owner.<name>``."""
    cls = type(owner)
    spec = _CACHE.get((cls, name))
    if spec is None:
        spec = _inspect(getattr(owner, name))
        _CACHE[(cls, name)] = spec
    return spec


def _inspect(bound: Callable[..., Any]) -> HookSpec:
    try:
        params = list(inspect.signature(bound).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: pass everything
        return HookSpec(True, frozenset(), True, None, False)
    required = frozenset(
        p.name
        for p in params
        if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY) and p.default is _P.empty
    )
    accepts_all = any(p.kind is _P.VAR_KEYWORD for p in params)
    positional = [p for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    var_positional = any(p.kind is _P.VAR_POSITIONAL for p in params)
    first = positional[0] if positional else None
    keywords = frozenset(
        p.name for p in params if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
    )
    if first is not None:
        keywords = keywords - {first.name}
    first_name = first.name if first is not None else None
    keyword_only_first = None
    if first is None and not var_positional:
        kw_only = [p for p in params if p.kind is _P.KEYWORD_ONLY]
        keyword_only_first = kw_only[0].name if kw_only else None
    record_as_self = first is None and not var_positional and keyword_only_first is None
    return HookSpec(
        accepts_all=accepts_all,
        keywords=keywords,
        first_positional=first is not None or var_positional,
        first_name=first_name or keyword_only_first,
        record_as_self=record_as_self and not accepts_all,
        required=required,
    )


def call_with_value(owner: object, name: str, value: Any, available: dict[str, Any]) -> Any:
    """Call ``owner.<name>(value, **declared keywords)``."""
    spec = hook_spec(owner, name)
    kwargs = spec.kwargs(available)
    method = getattr(owner, name)
    if spec.first_positional:
        return method(value, **kwargs)
    if spec.first_name is not None:
        kwargs = {k: v for k, v in kwargs.items() if k != spec.first_name}
        return method(**{spec.first_name: value}, **kwargs)
    return method(**kwargs)


#: The fields of a stored record that a row carries, under our names and Airflow's.
_ROW_FIELDS = (
    "flow_id", "task_id", "key", "value", "value_type", "dag_run_id", "batch_id", "size",
    "pushed_ns", "dag_id", "run_id", "map_index", "created_at", "timestamp",
)  # fmt: skip


def as_row(owner: object, record: Any, value: Any = None, *, decoded: bool = False) -> Any:
    """``record`` as Airflow hands it to a hook: an instance of the backend's class.

    The row has the backend's own attributes and the record's fields (``value``,
    ``key``, ``task_id``, ``dag_id``/``flow_id``, ``run_id``/``dag_run_id`` …), so a hook
    that reads ``self.value`` or calls ``super()`` works. With ``decoded``, ``value`` is
    given instead of the stored text (``purge`` gets the stored reference decoded, as
    Airflow 3 hands it).
    """
    row = object.__new__(type(owner))
    row.__dict__.update(getattr(owner, "__dict__", {}))
    row.__dict__.update({f: getattr(record, f) for f in _ROW_FIELDS})
    if decoded:
        row.__dict__["value"] = value
        row.__dict__["value_decoded"] = True  # BaseXCom.deserialize_value returns it as is
    return row


def call_with_record(owner: object, name: str, record: Any) -> Any:
    """Call ``owner.<name>(record)``; an Airflow-style ``def hook(self)`` runs on the row."""
    spec = hook_spec(owner, name)
    if spec.record_as_self:
        func = inspect.getattr_static(type(owner), name)
        func = getattr(func, "__func__", func)
        return func(as_row(owner, record))
    if spec.first_positional:
        return getattr(owner, name)(record)
    if spec.first_name is not None:
        return getattr(owner, name)(**{spec.first_name: record})
    return getattr(owner, name)(record)
