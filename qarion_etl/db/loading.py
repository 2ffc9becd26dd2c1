"""What an engine is given to load, in terms this package owns: rows, or a file to read.

An ingestion (``tasks/``) asks the warehouse's dialect two things: ``file_load(source)``,
a load in which the engine reads the input file itself (DuckDB's readers, PostgreSQL's
``COPY`` of a clean CSV file) or ``None``; and, when there is none or it gives up
(``ReadAgain``), ``insert_rows`` for the rows the checked reader makes. Like dlt's load
jobs, a ``FileLoad`` is made for one file on one engine and run once.

The file is described by the ``FileSource`` protocol (``tasks.formats.InputFile`` is one),
and the rows an engine refuses go to a ``Rejections`` (the task's bad-row policy), so that
``db`` imports nothing above it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from qarion_etl.db.statements import SqlRunner

#: Told the rows loaded so far and the share of the file read, either when known.
Progress = Callable[[int | None, float | None], None]


class ReadAgain(Exception):
    """The engine cannot load this file or name its bad rows: read it with the checked reader."""


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """How a CSV file is written (``[tasks.config]``: ``delimiter``, ``quote`` …)."""

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    header: bool = True
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = ("",)

    @classmethod
    def from_config(cls, config: Any) -> CsvOptions:
        nulls = config.get("null_values", [""])
        return cls(
            delimiter=str(config.get("delimiter", ",")),
            quote=str(config.get("quote", '"')),
            escape=config.get("escape"),
            header=bool(config.get("header", True)),
            encoding=str(config.get("encoding", "utf-8")),
            null_values=tuple(nulls) if isinstance(nulls, list) else (str(nulls),),
        )


class Column(Protocol):
    """A declared column of an input file (``[input].columns``)."""

    @property
    def name(self) -> str: ...
    @property
    def schema_type(self) -> str: ...
    @property
    def required(self) -> bool: ...


class FileSource(Protocol):
    """An input file as an engine that reads files itself sees it."""

    @property
    def path(self) -> Path: ...
    @property
    def shown(self) -> str:
        """The path as the flow wrote it, for messages."""
        ...

    @property
    def format(self) -> str:
        """``csv``, ``jsonl`` or ``parquet``."""
        ...

    @property
    def config(self) -> Mapping[str, Any]:
        """The task's ``[tasks.config]`` (``CsvOptions.from_config`` reads it)."""
        ...

    @property
    def columns(self) -> Sequence[Column]:
        """The declared columns."""
        ...

    @property
    def reread_refused(self) -> bool:
        """A file the engine refuses is read again by the checked reader, which names its
        bad rows (else the refusal fails the load: a Parquet file's own types are wrong)."""
        ...

    def file_columns(self) -> list[tuple[str, str]]:
        """The file's columns and their schema types (``string`` where not declared), as
        the checked reader reads them (for Parquet, the declared ones).

        Raises:
            IngestError: the header lacks a declared column, or the file cannot be read.
        """
        ...

    def converts(self, text: str, schema_type: str) -> bool:
        """Whether the checked reader reads ``text`` as a value of ``schema_type``."""
        ...


class RejectedRow(NamedTuple):
    """A row of the file the engine refused, worded as the checked reader words it."""

    line: int
    column: str | None
    reason: str
    raw: str | None


class Rejections(Protocol):
    """Where a file load puts the rows the engine refused (the task's bad-row policy)."""

    #: How many refused rows a message names.
    named: int

    def wanted(self, total: int) -> bool:
        """Whether every one of ``total`` refused rows is wanted (to quarantine them), or
        only the first ``named`` and the count."""
        ...

    def first(self, rows: Sequence[RejectedRow], total: int) -> None:
        """The first refused rows and how many there are in all."""
        ...

    def add(self, rows: Sequence[RejectedRow]) -> None:
        """Refused rows, every one, in file order, a page at a time."""
        ...


def _go_on() -> None:
    """No stop asked for."""


@dataclass(frozen=True, slots=True)
class LoadWatch:
    """What a load reports to, and asks, while it runs.

    Attributes:
        rejected: where the rows the engine refuses go.
        check_cancel: raises when the run is being stopped.
        progress: told how far the load is, if anyone wants to know.
    """

    rejected: Rejections
    check_cancel: Callable[[], None] = _go_on
    progress: Progress | None = None


class FileLoad(ABC):
    """The load of one file into a new table by the engine itself (``Dialect.file_load``)."""

    @abstractmethod
    def run(self, conn: SqlRunner, table: str, batch_id: int, watch: LoadWatch) -> int:
        """Create ``table`` (the file's columns and ``batch_id``) and fill it; returns the
        rows loaded.

        Raises:
            ReadAgain: the engine refused the file or cannot name its bad rows; the caller
                rolls the table back and reads the file with the checked reader.
        """


def loaded(conn: SqlRunner, rows: int, table: str) -> None:
    """Note the rows a load put into ``table`` in the recording of its statements."""
    if conn.statement_log is not None:
        conn.statement_log.note(f"{rows:,} rows loaded into {table}")


def missing_required(
    conn: SqlRunner, table: str, source: FileSource, quote: Callable[[str], str]
) -> bool:
    """Whether a required column of ``source`` has a NULL in the loaded ``table``."""
    required = [c.name for c in source.columns if c.required]
    if not required:
        return False
    cond = " OR ".join(f"{quote(c)} IS NULL" for c in required)
    return conn.exec_driver_sql(f"SELECT 1 FROM {table} WHERE {cond} LIMIT 1").first() is not None
