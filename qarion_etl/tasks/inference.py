"""The column types of an input file that declares none, inferred from every value.

When neither the ingestion task nor the flow's ``[input]`` declares ``columns``, the file
is read once before the load and each column gets the narrowest schema type that every
one of its values fits: ``integer``, else ``float``; ``date``, else ``timestamp``;
``boolean``; and ``string`` when nothing narrower fits (or the column holds no value).
The rules are stricter than the converters the load then applies, so every inferred
value loads:

- an integer fits a 64-bit signed integer and has no leading zero (``007`` is a code, kept
  as text); a float is finite and has no leading zero either;
- a date is ISO ``YYYY-MM-DD``; a timestamp is ISO ``YYYY-MM-DD`` followed by a time;
- a boolean is ``true`` or ``false`` in any case (``1``/``0`` are integers, ``y``/``n`` text);
- in JSON Lines, JSON numbers and ``true``/``false`` are typed by what they are, strings as
  CSV text is, and objects or arrays make the column ``string``.

Empty values (``null_values``) say nothing about a type. Rows the reader refuses (the
wrong number of fields, undecodable text) are left to the load, which reports them as it
always does. Parquet files carry their own types and are not inferred.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

from qarion_etl.definitions.flow import ColumnSpec
from qarion_etl.tasks.formats import InputFile

#: Formats whose values are inferred (Parquet files carry their types).
INFERRED_FORMATS = ("csv", "jsonl")
#: The types tried for a column's first value, narrowest first.
FIRST_TRIES = ("integer", "float", "date", "timestamp", "boolean")
#: The type a column widens to when a value does not fit its type (else ``string``).
WIDER = {"integer": "float", "date": "timestamp"}
_INT64 = 2**63
_LEADING_ZERO = re.compile(r"\s*[+-]?0\d")
_ISO_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}")


def _text_integer(text: str) -> bool:
    if _LEADING_ZERO.match(text):
        return False
    try:
        return -_INT64 <= int(text) < _INT64
    except ValueError:
        return False


def _text_float(text: str) -> bool:
    if _LEADING_ZERO.match(text) and not re.match(r"\s*[+-]?0[.eE]", text):
        return False
    try:
        value = float(text)
    except ValueError:
        return False
    if not math.isfinite(value):
        return False
    return not (value.is_integer() and abs(value) >= _INT64 and _text_integral(text))


def _text_integral(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def _text_date(text: str) -> bool:
    if not _ISO_DATE.match(text) or len(text.strip()) != 10:
        return False
    try:
        dt.date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _text_timestamp(text: str) -> bool:
    if not _ISO_DATE.match(text):
        return False
    try:
        dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _text_boolean(text: str) -> bool:
    return text.strip().lower() in ("true", "false")


_TEXT_FITS: dict[str, Callable[[str], bool]] = {
    "integer": _text_integer,
    "float": _text_float,
    "date": _text_date,
    "timestamp": _text_timestamp,
    "boolean": _text_boolean,
}


def fits(value: Any, schema_type: str) -> bool:
    """Whether a value read from the file (text, or a JSON value) is one of ``schema_type``."""
    if isinstance(value, str):
        return _TEXT_FITS[schema_type](value)
    if isinstance(value, bool):
        return schema_type == "boolean"
    if isinstance(value, int):
        return schema_type in ("integer", "float") and -_INT64 <= value < _INT64
    if isinstance(value, float):
        return schema_type == "float" and math.isfinite(value)
    return False


def narrowest(current: str | None, value: Any) -> str:
    """The narrowest type that holds the values of type ``current`` (``None``: no value yet)
    and ``value``."""
    if current is None:
        return next((t for t in FIRST_TRIES if fits(value, t)), "string")
    while current != "string" and not fits(value, current):
        current = WIDER.get(current, "string")
    return current


def infer_columns(source: InputFile) -> tuple[ColumnSpec, ...] | None:
    """The file's columns with inferred types; ``None`` for a format that is not inferred.

    Reads the whole file once, row batch by row batch, with the reader the load uses (its
    CSV options, encoding and null values).
    """
    if source.format not in INFERRED_FORMATS:
        return None
    reader = source.reader()
    types: list[str | None] = [None] * len(reader.names)
    open_columns = list(range(len(reader.names)))
    for batch in reader.batches:
        for row in batch:
            for i in open_columns:
                value = row[i]
                if value is not None:
                    types[i] = narrowest(types[i], value)
            if any(types[i] == "string" for i in open_columns):
                open_columns = [i for i in open_columns if types[i] != "string"]
        if not open_columns:
            break
    return tuple(
        ColumnSpec(name, stype or "string") for name, stype in zip(reader.names, types, strict=True)
    )


def with_inferred_columns(source: InputFile) -> tuple[InputFile, tuple[ColumnSpec, ...] | None]:
    """``source`` typed by inference when it declares no columns, and the inferred columns
    (``None`` when its columns are declared or its format carries types)."""
    if source.columns:
        return source, None
    inferred = infer_columns(source)
    if inferred is None:
        return source, None
    return dataclasses.replace(source, columns=inferred), inferred


def shown_columns(columns: tuple[ColumnSpec, ...]) -> list[dict[str, str]]:
    """Columns as result fields: ``[{"name": …, "schema_type": …}, …]``."""
    return [{"name": c.name, "schema_type": c.schema_type} for c in columns]
