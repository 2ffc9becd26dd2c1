"""The primary-key check of an ingestion: every key of the landing table is unique.

The check is a query on the staging table (``Dialect.duplicate_key_statements``), and a
duplicate is located in the file (``InputFile.locate_duplicate``). Before it, rows that
pass through Python are watched by ``KeyOrder``: exports usually come sorted by their
key, and integer keys that arrive strictly increasing are distinct, which proves the
check would find nothing, so it is not run. Only integer keys are watched: every engine
compares integers as Python does (text may compare by a collation, ``'a' = 'A'`` on
MySQL), and a NULL key, which the query counts equal to another NULL, stops the watch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from operator import itemgetter, lt
from typing import Any

from qarion_etl.db.connection import Connection
from qarion_etl.db.materialize import Stage
from qarion_etl.errors import IngestError
from qarion_etl.tasks.formats import InputFile


class KeyOrder:
    """Whether the keys of a stream of row batches are strictly increasing so far."""

    def __init__(self, indexes: Sequence[int]) -> None:
        self._key = itemgetter(*indexes)
        self._last: Any = None
        #: Every key seen so far is larger than the one before it: all are distinct.
        self.increasing = True

    @classmethod
    def of(cls, names: Sequence[str], types: Sequence[str], key: Sequence[str]) -> KeyOrder | None:
        """A watch for ``key`` over rows of columns ``names``, if its columns are integers."""
        if not key or any(k not in names for k in key):
            return None
        indexes = [names.index(k) for k in key]
        if any(types[i] != "integer" for i in indexes):
            return None
        return cls(indexes)

    def watch(self, batches: Iterable[list[tuple[Any, ...]]]) -> Iterator[list[tuple[Any, ...]]]:
        """``batches``, unchanged, looked at on the way."""
        for batch in batches:
            if self.increasing and batch:
                self._see(batch)
            yield batch

    def _see(self, batch: list[tuple[Any, ...]]) -> None:
        keys = list(map(self._key, batch))
        try:
            self.increasing = (self._last is None or self._last < keys[0]) and all(
                map(lt, keys, islice(keys, 1, None))
            )
        except TypeError:  # a NULL key
            self.increasing = False
        self._last = keys[-1]


def check_unique(conn: Connection, stage: Stage, key: list[str], source: InputFile) -> None:
    """Raise ``IngestError`` for a key that occurs twice in the staging table."""
    *before, sql = stage.ns.db.dialect.duplicate_key_statements(stage.table, key)
    for statement in before:
        conn.exec_driver_sql(statement)
    dup = conn.exec_driver_sql(sql).first()
    if dup is None:
        return
    source.locate_duplicate(key, tuple(dup))
    shown_key = ", ".join(f"{k}={v!r}" for k, v in zip(key, dup, strict=False))
    raise IngestError(f"duplicate primary key ({shown_key})", path=source.shown)
