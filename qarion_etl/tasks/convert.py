"""Value conversion for ingestion: file text and JSON values to Python, per schema type.

``converters()`` maps each schema type to a function from the file's text to the value:

- ``string`` keeps the text, ``integer`` and ``float`` take Python's ``int``/``float`` forms;
- ``decimal`` keeps every digit and refuses ``NaN`` and ``Infinity``;
- ``boolean`` accepts ``true/t/1/yes/y`` and ``false/f/0/no/n`` in any case;
- ``date`` and ``timestamp`` take ISO 8601 text.

Given the engine's ``Dialect.bind_as`` (SQLite stores decimals, dates and timestamps as
text), the converters of those types return the form the engine binds. ``convert_json_value`` checks a JSON Lines value against its
schema type: a JSON string converts as text does, a number fits ``integer`` (no fraction
or exponent), ``float`` or ``decimal``, ``true``/``false`` fit only ``boolean``, and an
object or array in a ``string`` column is kept as its JSON text. A value that does not
convert raises ``ValueError``; the readers turn that into an error naming the file, line
and column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable, Mapping
from typing import Any

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


def _boolean(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(text)


def _decimal(text: str) -> decimal.Decimal:
    try:
        value = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return value


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip())


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text.strip())


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": int,
    "float": float,
    "decimal": _decimal,
    "boolean": _boolean,
    "date": _date,
    "timestamp": _timestamp,
}


def converters(
    bind_as: Mapping[str, Callable[[Any], Any]] | None = None,
) -> dict[str, Callable[[str], Any]]:
    """Text-to-value converters per schema type; a type in ``bind_as`` (the engine's
    ``Dialect.bind_as``) ends in the form the engine binds."""
    if not bind_as:
        return CONVERTERS
    out = dict(CONVERTERS)
    for name, to_bound in bind_as.items():
        out[name] = (lambda conv, back: lambda text: back(conv(text)))(CONVERTERS[name], to_bound)
    return out


def convert_json_value(value: Any, schema_type: str) -> Any:
    """Check and convert one JSON value; raises ``ValueError``."""
    if isinstance(value, str):
        return CONVERTERS[schema_type](value) if schema_type != "string" else value
    if schema_type == "string":
        return value if not isinstance(value, (dict, list)) else json.dumps(value)
    if isinstance(value, bool):
        if schema_type == "boolean":
            return value
        raise ValueError(value)
    if schema_type == "integer" and isinstance(value, int):
        return value
    if schema_type == "float" and isinstance(value, (int, float)):
        return float(value)
    if schema_type == "decimal" and isinstance(value, (int, float)):
        return decimal.Decimal(str(value))
    raise ValueError(value)
