"""Input formats as one table, and ``InputFile``: one file an ingestion reads.

Each entry of ``FORMATS`` says, for one format, how to open a checked row reader
(``readers``), whether a row knows its line in the file, and what its columns are. A new
format is one entry here and its name in ``definitions.task_types.FORMATS`` (a test keeps
the two equal); an engine that reads files itself reads only the formats it knows, and
the checked reader reads the others. ``InputFile`` carries what every step of an
ingestion needs about its file, instead of loose arguments; it is the ``FileSource`` an
engine is given (``db.loading``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qarion_etl.definitions.flow import ColumnSpec
from qarion_etl.errors import IngestError
from qarion_etl.tasks.bad_rows import BadRowPolicy, BadRows
from qarion_etl.tasks.convert import CONVERTERS
from qarion_etl.tasks.readers import (
    CsvOptions,
    Reader,
    column_types,
    csv_header,
    csv_rows,
    jsonl_keys,
    jsonl_rows,
    parquet_rows,
)


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file: where it is, how messages show it, its format, options and columns.

    Args:
        path: the file on disk.
        shown: the path as the flow wrote it (``config.path``), for messages.
        format: ``csv``, ``jsonl`` or ``parquet``.
        config: the task's ``[tasks.config]`` (CSV options, encoding).
        columns: the declared columns (``Flow.input_for``), or the inferred ones.
    """

    path: Path
    shown: str
    format: str
    config: Mapping[str, Any]
    columns: Sequence[ColumnSpec]

    @property
    def kind(self) -> Format:
        fmt = FORMATS.get(self.format)
        if fmt is None:
            raise IngestError(f"unknown format {self.format!r} (known: {', '.join(FORMATS)})")
        return fmt

    @property
    def encoding(self) -> str:
        return str(self.config.get("encoding", "utf-8"))

    @property
    def reread_refused(self) -> bool:
        """A file the engine refuses is read again by the checked reader (``Format``)."""
        return self.kind.reread_refused

    def reader(
        self,
        extra: tuple[Any, ...] = (),
        *,
        bad: BadRows | None = None,
        bind_as: BindAs = None,
        with_line: bool = False,
    ) -> Reader:
        """A checked row reader; ``extra`` values end every row (the batch id).

        Bad rows are left out and reported to ``bad`` (without one, they are only left
        out). ``bind_as`` turns checked values into the form the engine binds
        (``Dialect.bind_as``); ``with_line`` ends every row with its line in the file.
        """
        if bad is None:
            bad = BadRows(self.shown, BadRowPolicy("skip"))
        return self.kind.open(self, extra, bad, bind_as, with_line)

    def file_columns(self) -> list[tuple[str, str]]:
        """The file's columns and their schema types, as the checked reader reads them
        (for Parquet, the declared ones); raises ``IngestError`` as the reader would."""
        return self.kind.columns(self)

    def converts(self, text: str, schema_type: str) -> bool:
        """Whether the checked reader reads ``text`` as a value of ``schema_type``."""
        try:
            CONVERTERS[schema_type](text)
        except (ValueError, TypeError):
            return False
        return True

    def locate_duplicate(self, key_columns: Sequence[str], duplicate: tuple[Any, ...]) -> None:
        """Re-read the file to raise the located error for the second row of key ``duplicate``.

        Bad rows are passed over (they were not loaded). Returns without raising when the
        key is not found twice; the caller then raises its own, less precise error.
        """
        reader = self.reader(with_line=self.kind.knows_lines)
        key_idx = [reader.names.index(k) for k in key_columns if k in reader.names]
        if not key_idx:
            return
        seen_first: int | None = None
        row_no = 0
        for batch in reader.batches:
            for row in batch:
                row_no += 1
                if tuple(row[i] for i in key_idx) != tuple(duplicate):
                    continue
                line = row[-1] if self.kind.knows_lines else row_no
                if seen_first is None:
                    seen_first = line
                    continue
                shown_key = ", ".join(
                    f"{k}={v!r}" for k, v in zip(key_columns, duplicate, strict=False)
                )
                raise IngestError(
                    f"duplicate primary key ({shown_key}), first seen on line {seen_first}",
                    path=self.shown,
                    line=line,
                )


#: Bound forms of checked values by schema type (``Dialect.bind_as``).
BindAs = Mapping[str, Callable[[Any], Any]] | None


@dataclass(frozen=True, slots=True)
class Format:
    """How one input format is read."""

    name: str
    open: Callable[[InputFile, tuple[Any, ...], BadRows, BindAs, bool], Reader]
    #: Rows carry their line in the file (else their row number is the best location).
    knows_lines: bool
    #: The file's columns and their schema types (``InputFile.file_columns``).
    columns: Callable[[InputFile], list[tuple[str, str]]]
    #: When an engine refuses the file, the checked reader reads it again to name the bad
    #: rows (a Parquet file DuckDB refuses is refused as a whole: its types are wrong).
    reread_refused: bool = True


def _open_csv(
    f: InputFile, extra: tuple[Any, ...], bad: BadRows, bind_as: BindAs, with_line: bool
) -> Reader:
    opts = CsvOptions.from_config(f.config)
    return csv_rows(f.path, f.shown, opts, f.columns, bad, extra, bind_as, with_line)


def _open_jsonl(
    f: InputFile, extra: tuple[Any, ...], bad: BadRows, bind_as: BindAs, with_line: bool
) -> Reader:
    return jsonl_rows(f.path, f.shown, f.columns, bad, extra, f.encoding, bind_as, with_line)


def _open_parquet(
    f: InputFile, extra: tuple[Any, ...], bad: BadRows, bind_as: BindAs, with_line: bool
) -> Reader:
    return parquet_rows(f.path, f.shown, f.columns, bad, extra)


def _csv_columns(f: InputFile) -> list[tuple[str, str]]:
    names = csv_header(f.path, f.shown, CsvOptions.from_config(f.config))
    return list(zip(names, column_types(names, f.columns, f.shown), strict=True))


def _jsonl_columns(f: InputFile) -> list[tuple[str, str]]:
    """The declared columns, then the first object's other keys (as ``string``)."""
    keys = jsonl_keys(f.path, f.shown)
    declared = {c.name: c.schema_type for c in f.columns}
    names = [c.name for c in f.columns] + [k for k in keys if k not in declared]
    return [(n, declared.get(n, "string")) for n in names]


def _parquet_columns(f: InputFile) -> list[tuple[str, str]]:
    return [(c.name, c.schema_type) for c in f.columns]


FORMATS: dict[str, Format] = {
    "csv": Format("csv", _open_csv, knows_lines=True, columns=_csv_columns),
    "jsonl": Format("jsonl", _open_jsonl, knows_lines=True, columns=_jsonl_columns),
    # Parquet rows have no lines: a problem is located by its row number.
    "parquet": Format(
        "parquet",
        _open_parquet,
        knows_lines=False,
        columns=_parquet_columns,
        reread_refused=False,
    ),
}
