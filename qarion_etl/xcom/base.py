"""``BaseXCom``: the plugin interface of XCom backends, and itself a working store.

This module is the contract a backend author reads: the hooks, the storage primitives,
``describe()`` and ``close()``. As in Airflow, ``BaseXCom`` is a complete backend: built
as ``Backend(db_service, **backend_config)`` it keeps values in the table
``<namespace>_xcom`` of the metadata database, through a ``SqlXComStore``
(``qarion_etl.xcom.sql_store``) it composes. How the service turns a value into a record
and back through these hooks is in ``qarion_etl.xcom.codec``.

A custom backend subclasses it and overrides any of four hooks:

- ``serialize_value(value, *, key, task_id, flow_id, dag_run_id, batch_id)`` returns what
  is stored (a static method here, so an override can end with
  ``return BaseXCom.serialize_value(value=reference)``);
- ``deserialize_value(record)`` turns a stored record back into the value (static too:
  ``BaseXCom.deserialize_value(result)``);
- ``orm_deserialize_value(record)`` the light form shown by listings (it gets the record
  as stored, and making it light is its job);
- ``clear(*, flow_id, task_id, dag_run_id, batch_id, key) -> int``;
- ``purge(xcom, session)`` (Airflow 2.6+), called with each stored value's row before the
  value is removed or replaced, to delete what it refers to elsewhere.

Hooks are called with only the keywords their override declares, so Airflow's
``dag_id``/``run_id``/``map_index`` spellings work, and a hook written on Airflow's row
(``def orm_deserialize_value(self)``) runs on a row that is an instance of the backend
class (see :mod:`qarion_etl.xcom.hooks`).

A backend that also replaces the storage (``memory``, ``local_file``, ``s3``) overrides
the five storage primitives instead: ``set_records``, ``get_record``, ``get_records``,
``list_records`` and ``delete_records`` (plus ``transaction`` and ``close`` if it has
something to batch or release). ``MemoryXComBackend`` is the shortest complete example.

Example, a custom backend ported from Airflow by changing only its imports::

    from qarion_etl.xcom import BaseXCom

    class RefXCom(BaseXCom):
        @staticmethod
        def serialize_value(value, key=None, task_id=None, dag_id=None, run_id=None, map_index=None, **kw):
            ref = upload(value, f"{dag_id}/{run_id}/{task_id}/{key}")
            return BaseXCom.serialize_value(value=ref)

        @staticmethod
        def deserialize_value(result):
            return download(BaseXCom.deserialize_value(result))
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from qarion_etl.errors import ConfigError, QarionError, StoreUnavailable, XComValueError
from qarion_etl.jsontext import loads
from qarion_etl.xcom.hooks import as_row
from qarion_etl.xcom.records import XComQuery, XComRecord
from qarion_etl.xcom.sql_store import SqlXComStore
from qarion_etl.xcom.table import check_table_name
from qarion_etl.xcom.values import (
    DEFAULT_MAX_VALUE_BYTES,
    XComValueType,
    coerce,
    decode,
    encode,
    infer_type,
    preview,
)

if TYPE_CHECKING:
    from qarion_etl.db.service import DatabaseService

DEFAULT_NAMESPACE = "qarion"

_F = TypeVar("_F", bound=Callable[..., Any])


def light_listing(hook: _F) -> _F:
    """Mark an ``orm_deserialize_value`` that needs only a prefix of the stored text.

    Listings then read previews from the store; for any other override they hand over the
    whole stored text (what the store holds), as Airflow does.
    """
    hook.__dict__["light_listing"] = True
    return hook


class StoredValue(str):
    """Text returned by ``BaseXCom.serialize_value``; remembers the value type it encodes."""

    value_type: XComValueType

    def __new__(cls, text: str, value_type: XComValueType) -> StoredValue:
        obj = super().__new__(cls, text)
        obj.value_type = value_type
        return obj


def resolve_type(
    value: Any, value_type: XComValueType | str | None, task_id: str | None, key: str | None
) -> XComValueType:
    """The declared type of a push, or the type inferred from the value."""
    if value_type is None:
        return infer_type(value)
    try:
        return XComValueType.parse(value_type)
    except ValueError as exc:
        raise XComValueError(str(exc), task_id=task_id, key=key) from None


class BaseXCom:
    """An XCom backend: hooks to override and storage primitives (a SQL table by default).

    Args:
        db_service: the metadata database (``DatabaseService``) that holds the table.
        table_name: table to use; default ``<namespace>_xcom``.
        namespace: prefix of the metadata tables (``[metadata].namespace``); default
            ``qarion``.
    """

    #: Largest stored value in bytes; ``create_backend`` sets it from ``[xcom].max_value_bytes``.
    max_value_bytes: int | None = DEFAULT_MAX_VALUE_BYTES
    #: Characters of a stored value that listings read.
    preview_chars: int = 60
    #: Stored values larger than this many bytes go to another store (``None``: never);
    #: the database backend's ``offload_threshold_bytes`` option sets it.
    offload_threshold_bytes: int | None = None

    #: Whether the class keeps the base's own hooks (``codec`` then skips them), and
    #: whether its listing hook needs only previews.
    plain_serialize = True
    plain_deserialize = True
    plain_purge = True
    light_listings = True

    def __init__(
        self,
        db_service: DatabaseService | None = None,
        *,
        table_name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        self.db_service = db_service
        self.namespace = namespace or DEFAULT_NAMESPACE
        self.table_name = table_name or f"{self.namespace}_xcom"
        if db_service is not None:
            check_table_name(self.table_name)
        self._sql: SqlXComStore | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.plain_serialize = cls.serialize_value is BaseXCom.serialize_value
        cls.plain_deserialize = cls.deserialize_value is BaseXCom.deserialize_value
        cls.plain_purge = cls.purge is BaseXCom.purge
        cls.light_listings = bool(getattr(cls.orm_deserialize_value, "light_listing", False))

    def __repr__(self) -> str:
        where = f" table={self.table_name!r}" if self.db_service is not None else ""
        return f"<{type(self).__module__}.{type(self).__qualname__}{where}>"

    # --- hooks -------------------------------------------------------------------------
    @staticmethod
    def serialize_value(
        value: Any,
        *,
        key: str | None = None,
        task_id: str | None = None,
        flow_id: str | None = None,
        dag_run_id: str | None = None,
        batch_id: int | None = None,
        value_type: XComValueType | str | None = None,
        **airflow_kwargs: Any,
    ) -> str:
        """Turn a value into the text that is stored.

        Args:
            value: the value to store.
            key, task_id, flow_id, dag_run_id, batch_id: the identity, for overrides that
                store the value elsewhere and keep a reference.
            value_type: the declared type; inferred from the value when ``None``.

        Returns:
            JSON text (a ``StoredValue`` that remembers its type).

        Raises:
            XComValueError: the value does not fit its type or cannot be serialised.
        """
        vt = resolve_type(value, value_type, task_id, key)
        value = coerce(value, vt, task_id=task_id, key=key)
        return StoredValue(encode(value, vt, task_id=task_id, key=key), vt)

    @staticmethod
    def deserialize_value(result: Any) -> Any:
        """Turn a stored record (``result.value``, ``result.value_type``) back into its value.

        A row handed to ``purge`` holds its value already decoded: it comes back as it is.
        """
        value = result.value
        if getattr(result, "value_decoded", False) or not isinstance(
            value, str | bytes | bytearray | memoryview
        ):
            return value
        text = value if isinstance(value, str) else bytes(value)
        return decode(text, getattr(result, "value_type", None))

    @light_listing
    def orm_deserialize_value(self, record: Any = None) -> Any:
        """The light form of a record for listings: a short preview, never the full value.

        Called as Airflow does, on the row (``super().orm_deserialize_value()`` in a
        row-style override), ``self`` is the record.
        """
        r: Any = self if record is None else record
        return preview(r.value, r.value_type, r.size, self.preview_chars)

    @staticmethod
    def purge(xcom: Any, session: Any = None) -> None:
        """Remove what a stored value refers to, before the value is removed or replaced.

        Args:
            xcom: the stored row (``value`` decoded, ``key``, ``task_id``, ``dag_id``,
                ``run_id`` …).
            session: always ``None`` here (Airflow passes its ORM session).
        """

    def clear(
        self,
        *,
        flow_id: str | None = None,
        task_id: str | None = None,
        dag_run_id: str | None = None,
        batch_id: int | None = None,
        key: str | None = None,
        older_than: _dt.datetime | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
        session: Any = None,
    ) -> int:
        """Remove the values that match every given filter; ``None`` matches anything.

        Args:
            flow_id, task_id, dag_run_id, batch_id, key: filters (``dag_id`` and ``run_id``
                are Airflow's names for the first and third).
            older_than: only values pushed before this moment.

        Returns:
            How many values were removed.
        """
        query = XComQuery(
            flow_id=flow_id if flow_id is not None else dag_id,
            task_id=task_id,
            key=key,
            dag_run_id=dag_run_id if dag_run_id is not None else run_id,
            batch_id=batch_id,
        )
        cutoff = None
        if older_than is not None:
            aware = older_than if older_than.tzinfo else older_than.replace(tzinfo=_dt.UTC)
            cutoff = int(aware.timestamp() * 1e9)
        if not self.plain_purge:
            doomed = self.list_records(query, limit=None, preview_chars=None)
            self.purge_records([r for r in doomed if cutoff is None or r.pushed_ns < cutoff])
        return self.delete_records(query, older_than_ns=cutoff)

    def purge_records(self, records: Sequence[XComRecord]) -> None:
        """Call ``purge`` with the row of each of ``records`` (full stored records)."""
        for record in records:
            try:
                decoded = loads(record.value) if isinstance(record.value, str) else record.value
            except ValueError:
                decoded = record.value
            try:
                self.purge(as_row(self, record, decoded, decoded=True), None)
            except QarionError:
                raise
            except Exception as exc:
                raise StoreUnavailable(
                    f"{type(self).__name__}.purge failed: {type(exc).__name__}: {exc}",
                    task_id=record.task_id,
                    key=record.key,
                ) from exc

    # --- storage primitives (the database table by default) ----------------------------
    def _store(self) -> SqlXComStore:
        if self._sql is None:
            if self.db_service is None:
                raise ConfigError(
                    f"XCom backend {type(self).__name__} needs a database service "
                    "(build it as Backend(db_service, **backend_config))"
                )
            self._sql = SqlXComStore(self.db_service, self.table_name)
        return self._sql

    def set_records(self, records: Sequence[XComRecord]) -> None:
        """Store records, each replacing the one with the same identity (one atomic upsert)."""
        self._store().upsert(records)

    def get_record(self, query: XComQuery) -> XComRecord | None:
        """The most recently pushed record matching ``query``, or ``None``."""
        return self._store().newest(query)

    def get_records(self, query: XComQuery, task_ids: Sequence[str]) -> dict[str, XComRecord]:
        """The most recently pushed matching record of each task in ``task_ids`` that has one."""
        return self._store().newest_per_task(query, task_ids)

    def list_records(
        self, query: XComQuery, *, limit: int | None = None, preview_chars: int | None = 60
    ) -> list[XComRecord]:
        """Matching records, newest first.

        ``value`` holds at most ``preview_chars`` characters (``truncated`` says when it was
        cut), or, with ``preview_chars=None``, the whole stored text.
        """
        return self._store().scan(query, limit=limit, preview_chars=preview_chars)

    def count_records(self, query: XComQuery) -> int:
        """How many records match ``query``."""
        if type(self).list_records is BaseXCom.list_records:
            return self._store().count(query)
        return len(self.list_records(query, limit=None, preview_chars=1))

    def delete_records(self, query: XComQuery, *, older_than_ns: int | None = None) -> int:
        """Delete matching records (pushed before ``older_than_ns`` if given); returns the count."""
        return self._store().delete(query, older_than_ns=older_than_ns)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction where the store has them."""
        if self.db_service is None and self._sql is None:
            yield
            return
        with self._store().transaction():
            yield

    def describe(self) -> str:
        """Where values are stored, for ``doctor`` and ``config show`` (empty: not said)."""
        return f"table {self.table_name}" if self.db_service is not None else ""

    def close(self) -> None:
        """Release connections and files."""
        if self._sql is not None:
            self._sql.close()
            self._sql = None

    def __enter__(self) -> BaseXCom:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
