"""Input formats as one table, and ``InputFile``: one file an ingestion reads.

Each entry of ``FORMATS`` says, for one format, how to open a checked row reader
(``readers``), whether a row knows its line in the file, and how DuckDB reads the file
itself (the ``read_file`` bulk-load path). A new format is one entry here and its name in
``definitions.task_types.FORMATS`` (a test keeps the two equal). ``InputFile`` carries what
every step of an ingestion needs about its file, instead of loose arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qarion_etl.db.dialects import Dialect
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
        columns: the flow's ``[input].columns``.
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

    def reader(
        self,
        extra: tuple[Any, ...] = (),
        *,
        bad: BadRows | None = None,
        as_text: bool = False,
        with_line: bool = False,
    ) -> Reader:
        """A checked row reader; ``extra`` values end every row (the batch id).

        Bad rows are left out and reported to ``bad`` (without one, they are only left
        out). ``as_text`` stores decimals, dates and timestamps as text (SQLite);
        ``with_line`` ends every row with its line in the file.
        """
        if bad is None:
            bad = BadRows(self.shown, BadRowPolicy("skip"))
        return self.kind.open(self, extra, bad, as_text, with_line)

    def duckdb_source(self, dialect: Dialect, rejects: tuple[str, str] | None = None) -> str:
        """A SQL expression that reads the file in DuckDB with the declared column types.

        With ``rejects`` (CSV), DuckDB skips the rows it cannot read and lists them in the
        temporary tables so named (its ``rejects_table`` and ``rejects_scan``).
        """
        return self.kind.duckdb_source(self, dialect, rejects)

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


@dataclass(frozen=True, slots=True)
class Format:
    """How one input format is read."""

    name: str
    open: Callable[[InputFile, tuple[Any, ...], BadRows, bool, bool], Reader]
    #: Rows carry their line in the file (else their row number is the best location).
    knows_lines: bool
    duckdb_source: Callable[[InputFile, Dialect, tuple[str, str] | None], str]
    #: When DuckDB refuses the file, the checked reader reads it again to name the bad
    #: rows (a Parquet file DuckDB refuses is refused as a whole: its types are wrong).
    reread_refused: bool = True


def _open_csv(
    f: InputFile, extra: tuple[Any, ...], bad: BadRows, as_text: bool, with_line: bool
) -> Reader:
    opts = CsvOptions.from_config(f.config)
    return csv_rows(f.path, f.shown, opts, f.columns, bad, extra, as_text, with_line)


def _open_jsonl(
    f: InputFile, extra: tuple[Any, ...], bad: BadRows, as_text: bool, with_line: bool
) -> Reader:
    return jsonl_rows(f.path, f.shown, f.columns, bad, extra, f.encoding, as_text, with_line)


def _open_parquet(
    f: InputFile, extra: tuple[Any, ...], bad: BadRows, as_text: bool, with_line: bool
) -> Reader:
    return parquet_rows(f.path, f.shown, f.columns, bad, extra)


def _duckdb_csv(f: InputFile, d: Dialect, rejects: tuple[str, str] | None) -> str:
    opts = CsvOptions.from_config(f.config)
    names = csv_header(f.path, f.shown, opts)
    types = column_types(names, f.columns, f.shown)
    columns = ", ".join(
        f"{d.literal(n)}: {d.literal(d.sql_type(t))}" for n, t in zip(names, types, strict=True)
    )
    args = [
        f"header = {str(opts.header).lower()}",
        f"delim = {d.literal(opts.delimiter)}",
        f"quote = {d.literal(opts.quote)}",
        f"columns = {{{columns}}}",
        "auto_detect = false",
        f"nullstr = [{', '.join(d.literal(n) for n in opts.null_values)}]",
    ]
    if opts.escape:
        args.append(f"escape = {d.literal(opts.escape)}")
    if rejects is not None:
        args += [
            "store_rejects = true",
            f"rejects_table = {d.literal(rejects[0])}",
            f"rejects_scan = {d.literal(rejects[1])}",
        ]
        # A missing value of a required typed column is then a rejected row too (DuckDB
        # cannot cast the null text), named with its line like any other.
        strict = _not_null_columns(f, names, types, opts.null_values)
        if strict:
            args.append(f"force_not_null = [{', '.join(d.literal(n) for n in strict)}]")
    return f"read_csv({d.literal(str(f.path))}, {', '.join(args)})"


def _not_null_columns(
    f: InputFile, names: list[str], types: list[str], nulls: Sequence[str]
) -> list[str]:
    """Required typed columns whose null texts (``null_values``) are no value of their type."""
    required = {c.name for c in f.columns if c.required}
    out = []
    for name, stype in zip(names, types, strict=True):
        if name in required and stype != "string" and not any(_converts(v, stype) for v in nulls):
            out.append(name)
    return out


def _converts(text: str, schema_type: str) -> bool:
    try:
        CONVERTERS[schema_type](text)
    except (ValueError, TypeError):
        return False
    return True


def _duckdb_jsonl(f: InputFile, d: Dialect, rejects: tuple[str, str] | None = None) -> str:
    keys = jsonl_keys(f.path, f.shown)
    declared = {c.name: c.schema_type for c in f.columns}
    names = [c.name for c in f.columns] + [k for k in keys if k not in declared]
    columns = ", ".join(
        f"{d.literal(n)}: {d.literal(d.sql_type(declared.get(n, 'string')))}" for n in names
    )
    return f"read_json({d.literal(str(f.path))}, format = 'newline_delimited', columns = {{{columns}}})"


def _duckdb_parquet(f: InputFile, d: Dialect, rejects: tuple[str, str] | None = None) -> str:
    source = f"read_parquet({d.literal(str(f.path))})"
    if not f.columns:
        return source
    casts = ", ".join(
        f"CAST({d.quote(c.name)} AS {d.sql_type(c.schema_type)}) AS {d.quote(c.name)}"
        for c in f.columns
    )
    return f"(SELECT * REPLACE ({casts}) FROM {source})"


FORMATS: dict[str, Format] = {
    "csv": Format("csv", _open_csv, knows_lines=True, duckdb_source=_duckdb_csv),
    "jsonl": Format("jsonl", _open_jsonl, knows_lines=True, duckdb_source=_duckdb_jsonl),
    # Parquet rows have no lines: a problem is located by its row number.
    "parquet": Format(
        "parquet",
        _open_parquet,
        knows_lines=False,
        duckdb_source=_duckdb_parquet,
        reread_refused=False,
    ),
}
