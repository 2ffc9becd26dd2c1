"""XCom value types and their text form at rest.

Every stored value is one JSON document (UTF-8 text), whatever its type, so a plain
``SELECT value FROM qarion_xcom`` shows readable JSON. The type travels beside it
(``value_type``) and decides what Python type a pull returns.

=========  ==========================  ===============================================
type       accepts                     stored as / pulled back as
=========  ==========================  ===============================================
json       anything JSON can hold      JSON text / dict, list, str, int, float, bool, None
string     ``str``                     JSON string / ``str``
integer    ``int``, integral Decimal   JSON number / ``int``
           or float
float      ``int``, ``float``,         JSON number, or ``"NaN"``, ``"Infinity"``,
           ``Decimal``                 ``"-Infinity"`` / ``float``
boolean    ``bool``                    ``true`` or ``false`` / ``bool``
binary     ``bytes``, ``bytearray``,   base64 in a JSON string / ``bytes``
           ``memoryview``
=========  ==========================  ===============================================

Choices where JSON has no answer (SQL drivers return these types):

- ``Decimal`` becomes a JSON number: an ``int`` when it has no fraction, else a ``float``
  (about 15 significant digits). Push it as ``string`` to keep every digit.
- ``date``, ``datetime`` and ``time`` become ISO-8601 strings (``2024-01-15``,
  ``2024-01-15T10:30:00+00:00``); ``UUID`` its canonical string; ``timedelta`` its total
  seconds; sets and tuples become lists. They pull back as those JSON values.
- NaN and ±Infinity are not JSON. A bare non-finite float pushed without a type is
  stored as ``float`` (``"NaN"``) and pulls back as the same float; inside a JSON document
  it is an error naming task and key, because no JSON reader would accept it.
- A value with no declared type is ``binary`` when it is bytes and ``json`` otherwise.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from qarion_etl.errors import XComValueError, clip
from qarion_etl.jsontext import TooDeep, loads

DEFAULT_MAX_VALUE_BYTES = 1024 * 1024

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class XComValueType(enum.StrEnum):
    """How a value is checked, stored and given back."""

    JSON = "json"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    BINARY = "binary"

    @classmethod
    def parse(cls, name: str | XComValueType) -> XComValueType:
        """The type named ``name`` (``"integer"``, ``"INTEGER"``, ``"int"`` …).

        Raises:
            ValueError: for an unknown name; the message lists the valid ones.
        """
        if isinstance(name, XComValueType):
            return name
        text = str(name).strip().lower()
        text = _ALIASES.get(text, text)
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown XCom value type '{name}' (valid: {valid})") from None

    def from_text(self, text: str) -> Any:
        """A value of this type written as text (``xcom push TASK VALUE --type``).

        ``json`` parses JSON, ``binary`` takes base64, ``boolean`` true/false, yes/no or 1/0.

        Raises:
            TooDeep: JSON nested too deeply to read (a ``ValueError``).
            ValueError: the text is not a value of this type.
        """
        if self is XComValueType.STRING:
            return text
        try:
            if self is XComValueType.JSON:
                return loads(text)
            if self is XComValueType.INTEGER:
                return int(text)
            if self is XComValueType.FLOAT:
                return float(text)
            if self is XComValueType.BOOLEAN:
                return _BOOLEAN_TEXT[text.strip().lower()]
            return base64.b64decode(text, validate=True)
        except TooDeep:
            raise
        except (ValueError, KeyError, binascii.Error):
            what = "valid JSON" if self is XComValueType.JSON else f"a valid {self.value}"
            hint = " (give binary values as base64)" if self is XComValueType.BINARY else ""
            raise ValueError(f"{clip(text)!r} is not {what}{hint}") from None


_BOOLEAN_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

_ALIASES = {
    "str": "string",
    "text": "string",
    "int": "integer",
    "bool": "boolean",
    "bytes": "binary",
    "double": "float",
    "number": "float",
}


def infer_type(value: Any) -> XComValueType:
    """The type a value gets when the caller declares none."""
    if isinstance(value, bytes | bytearray | memoryview):
        return XComValueType.BINARY
    if isinstance(value, float) and not math.isfinite(value):
        return XComValueType.FLOAT
    return XComValueType.JSON


def _fail(
    message: str, task_id: str | None, key: str | None, hint: str | None = None
) -> XComValueError:
    return XComValueError(message, task_id=task_id, key=key, hint=hint)


def coerce(
    value: Any, value_type: XComValueType, *, task_id: str | None = None, key: str | None = None
) -> Any:
    """Check that ``value`` fits ``value_type`` and return it in the type's Python form.

    Raises:
        XComValueError: the value does not fit; the error names task and key.
    """
    if value is None:
        return None  # an explicit None is stored as JSON null whatever the type
    vt = value_type
    name = type(value).__name__
    if vt is XComValueType.JSON:
        return value
    if vt is XComValueType.STRING:
        if isinstance(value, str):
            return value
    elif vt is XComValueType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, Decimal | float) and math.isfinite(value) and value == int(value):
            return int(value)
    elif vt is XComValueType.FLOAT:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return float(value)
    elif vt is XComValueType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif vt is XComValueType.BINARY:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
    raise _fail(
        f"value of type {name} does not fit XCom type '{vt.value}': {clip(repr(value))}",
        task_id,
        key,
    )


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback for the types SQL drivers return (see the module docs)."""
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"non-finite Decimal {obj} is not JSON")
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, _dt.datetime | _dt.date | _dt.time):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, set | frozenset):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        raise TypeError(
            "bytes inside a JSON document; push them alone (type binary) or base64-encode them"
        )
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


_ENCODER = json.JSONEncoder(
    default=json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
)


def dumps_json(value: Any, *, task_id: str | None = None, key: str | None = None) -> str:
    """Strict JSON text for ``value`` (no NaN, no Infinity), compact and UTF-8 friendly."""
    try:
        text = _ENCODER.encode(value)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate: no reader could use it
                bad = text[exc.start : exc.end].encode("unicode_escape").decode("ascii")
                raise _fail(
                    f"value holds {bad}, half of a UTF-16 surrogate pair, which is not text",
                    task_id,
                    key,
                    hint="it cannot be read back by any JSON reader: push valid Unicode text",
                ) from None
        return text
    except ValueError as exc:
        text = str(exc)
        if "Out of range float" in text or "non-finite" in text:
            raise _fail(
                "NaN and Infinity cannot be stored inside a JSON value",
                task_id,
                key,
                hint="replace them with None, or push a single number with value_type=FLOAT",
            ) from None
        raise _fail(f"value cannot be serialised as JSON: {text}", task_id, key) from None
    except (TypeError, RecursionError) as exc:
        raise _fail(f"value cannot be serialised as JSON: {exc}", task_id, key) from None


def encode(
    value: Any, value_type: XComValueType, *, task_id: str | None = None, key: str | None = None
) -> str:
    """The stored text of a value already checked by :func:`coerce`."""
    if value is None:
        return "null"
    if value_type is XComValueType.BINARY:
        return '"' + base64.b64encode(value).decode("ascii") + '"'
    if value_type is XComValueType.FLOAT and not math.isfinite(value):
        return '"NaN"' if math.isnan(value) else ('"Infinity"' if value > 0 else '"-Infinity"')
    if value_type is XComValueType.FLOAT:
        return repr(float(value))
    return dumps_json(value, task_id=task_id, key=key)


class CorruptValue(ValueError):
    """A stored value that does not read back as its type (edited or damaged at rest)."""


def _no_constant(name: str) -> Any:
    raise CorruptValue(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise CorruptValue(f"the number {clip(text, 30)} is too large to be finite")
    return number


def _loads(text: str | bytes) -> Any:
    try:
        return loads(text, parse_constant=_no_constant, parse_float=_finite)
    except TooDeep as exc:
        raise CorruptValue(str(exc)) from None
    except UnicodeDecodeError:
        raise CorruptValue("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise CorruptValue(f"it is not valid JSON ({exc.msg} at character {exc.pos})") from None


def decode(text: str | bytes | None, value_type: XComValueType | str | None) -> Any:
    """The Python value of stored ``text`` of ``value_type``.

    A stored document that does not fit its type (a custom backend that stored a reference
    under a typed push) comes back as the plain JSON value rather than failing; use
    ``decode_strict`` for what this package wrote itself.

    Raises:
        CorruptValue: the text is not JSON (or not UTF-8).
    """
    if text is None:
        return None
    if value_type == "json" and isinstance(text, str):
        return _loads(text)
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", "strict")
    doc = _loads(text)
    if doc is None:
        return None
    vt = value_type if isinstance(value_type, XComValueType) else _parse_stored(value_type)
    if vt is XComValueType.BINARY and isinstance(doc, str):
        try:
            return base64.b64decode(doc, validate=True)
        except (binascii.Error, ValueError):
            return doc
    if vt is XComValueType.FLOAT:
        if isinstance(doc, str) and doc in _NON_FINITE:
            return _NON_FINITE[doc]
        if isinstance(doc, int | float) and not isinstance(doc, bool):
            return float(doc)
    if vt is XComValueType.INTEGER and isinstance(doc, float) and doc.is_integer():
        return int(doc)
    return doc


def decode_strict(text: str | bytes | None, value_type: XComValueType | str | None) -> Any:
    """The value of ``text`` as ``encode`` wrote it for ``value_type``, or ``CorruptValue``.

    Every type reads back as its own Python type or ``None`` (an explicit ``None`` push);
    anything else (an integer too large to be finite, a string under ``integer``, base64
    that is not, an unknown type name) was not written by this package and is refused.
    """
    if text is None:
        return None
    if isinstance(value_type, XComValueType):
        vt = value_type
    else:
        try:
            vt = XComValueType(value_type or "json")
        except ValueError:
            raise CorruptValue(f"its type {clip(str(value_type))!r} is unknown") from None
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8", "strict")
        except UnicodeDecodeError:
            raise CorruptValue("it is not UTF-8 text") from None
    doc = _loads(text)
    if doc is None or vt is XComValueType.JSON:
        return doc
    if vt is XComValueType.STRING and isinstance(doc, str):
        return doc
    if vt is XComValueType.BOOLEAN and isinstance(doc, bool):
        return doc
    if vt is XComValueType.INTEGER and isinstance(doc, int) and not isinstance(doc, bool):
        return doc
    if vt is XComValueType.FLOAT:
        if isinstance(doc, str) and doc in _NON_FINITE:
            return _NON_FINITE[doc]
        if isinstance(doc, int | float) and not isinstance(doc, bool) and math.isfinite(doc):
            return float(doc)
    if vt is XComValueType.BINARY and isinstance(doc, str):
        try:
            return base64.b64decode(doc, validate=True)
        except (binascii.Error, ValueError):
            raise CorruptValue("its base64 text is not valid") from None
    raise CorruptValue(f"{clip(text, 40)!r} is not a stored {vt.value} value")


def _parse_stored(name: str | None) -> XComValueType:
    if not name:
        return XComValueType.JSON
    try:
        return XComValueType(name)
    except ValueError:
        return XComValueType.JSON


def check_size(
    text: str, limit: int | None, *, task_id: str | None = None, key: str | None = None
) -> int:
    """The UTF-8 size of ``text``; raises when it is over ``limit`` bytes.

    Raises:
        XComValueError: the value is too large for XCom.
    """
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if limit is not None and size > limit:
        raise _fail(
            f"value is {size:,} bytes, over the XCom limit of {limit:,} bytes (max_value_bytes)",
            task_id,
            key,
            hint="XCom is for small values: write the data to a dataset (table) and push its name instead",
        )
    return size


def preview(
    text: str | None, value_type: XComValueType | str | None, size: int, limit: int = 60
) -> str:
    """A short, one-line preview of a stored value for listings."""
    vt = _parse_stored(
        value_type if not isinstance(value_type, XComValueType) else value_type.value
    )
    if vt is XComValueType.BINARY and text not in (None, "null"):
        return _stored_binary_preview(text or "", size, limit)
    flat = " ".join((text or "").split())
    if len(flat) > limit or size > len((text or "").encode("utf-8")):
        return flat[: limit - 1] + "…"
    return flat


def binary_preview(
    data: bytes, total: int | None = None, *, approximate: bool = False, limit: int = 60
) -> str:
    """Bytes for a listing: their size and the first of them in hex, never a bytes repr.

    ``total`` is the whole value's size when ``data`` is only its first bytes
    (``approximate``: known to a few bytes, shown with ``~``).
    Example: ``<binary 11 bytes> 68656c6c6f00776f726c64``.
    """
    size = len(data) if total is None else total
    head = f"<binary {'~' if approximate else ''}{size:,} byte{'' if size == 1 else 's'}>"
    room = max((limit - len(head) - 2) // 2, 0)
    shown = bytes(data[:room]).hex()
    if not shown:
        return head
    return f"{head} {shown}{'…' if size > room else ''}"


def _stored_binary_preview(text: str, size: int, limit: int) -> str:
    """The preview of a stored binary value: base64 in a JSON string, maybe cut short."""
    body = text.strip().removeprefix('"')
    whole = body.endswith('"') and len(text) >= size
    body = body.removesuffix('"')
    try:
        data = base64.b64decode(body[: len(body) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):
        return "<binary>"
    if whole:
        return binary_preview(data, limit=limit)
    # Four base64 characters are three bytes; the padding of the end is not at hand.
    return binary_preview(data, max(size - 2, 0) // 4 * 3, approximate=True, limit=limit)
