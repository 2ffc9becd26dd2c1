"""Value types: round trips (hypothesis), SQL driver types, strict JSON at rest, errors."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qarion_etl.errors import XComValueError
from qarion_etl.xcom import BaseXCom, XComRecord, XComService, XComValueType
from qarion_etl.xcom.backends.memory import MemoryXComBackend
from qarion_etl.xcom.values import check_size, coerce, decode, encode

VT = XComValueType

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

STRATEGIES: dict[XComValueType, st.SearchStrategy[Any]] = {
    VT.JSON: json_values,
    VT.STRING: st.text(),
    VT.INTEGER: st.integers(),
    VT.FLOAT: st.floats(),
    VT.BOOLEAN: st.booleans(),
    VT.BINARY: st.binary(),
}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def strict_json(text: str) -> Any:
    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constants)


@pytest.mark.parametrize("vtype", list(XComValueType), ids=str)
@given(data=st.data())
@settings(max_examples=150, deadline=None)
def test_serialize_deserialize_round_trip(vtype: XComValueType, data: st.DataObject) -> None:
    value = data.draw(STRATEGIES[vtype])
    stored = BaseXCom.serialize_value(value, value_type=vtype)
    strict_json(stored)  # always plain JSON at rest
    record = XComRecord("f", "t", "k", stored, vtype.value)
    assert same(BaseXCom.deserialize_value(record), value)


@pytest.mark.parametrize("vtype", list(XComValueType), ids=str)
@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_round_trip_through_memory_backend(vtype: XComValueType, data: st.DataObject) -> None:
    svc = XComService(MemoryXComBackend(), default_flow_id="f")
    value = data.draw(STRATEGIES[vtype])
    svc.push("t", value, value_type=vtype)
    assert same(svc.pull("t"), value)


@pytest.fixture(scope="module")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XComService]:
    from qarion_etl.db_service import DatabaseService
    from qarion_etl.xcom.backends.database import DatabaseXComBackend

    path = Path(tmp_path_factory.mktemp("values")) / "x.db"
    backend = DatabaseXComBackend(DatabaseService(f"sqlite:///{path}"))
    yield XComService(backend, default_flow_id="f")
    backend.close()


@pytest.mark.parametrize("vtype", list(XComValueType), ids=str)
@given(data=st.data())
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_round_trip_through_sqlite(
    sqlite_service: XComService, vtype: XComValueType, data: st.DataObject
) -> None:
    value = data.draw(STRATEGIES[vtype])
    sqlite_service.push("t", value, value_type=vtype, key=vtype.value)
    assert same(sqlite_service.pull("t", key=vtype.value), value)


def test_sql_driver_types_serialise_cleanly() -> None:
    row = {
        "avg": Decimal("123.4500"),
        "count": Decimal("1000"),
        "day": dt.date(2024, 1, 15),
        "at": dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.UTC),
        "naive": dt.datetime(2024, 1, 15, 10, 30, 0, 5),
        "clock": dt.time(8, 0),
        "took": dt.timedelta(minutes=1, seconds=30),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "tags": {"b", "a"},
        "pair": (1, 2),
    }
    text = encode(row, VT.JSON)
    assert strict_json(text) == {
        "avg": 123.45,
        "count": 1000,
        "day": "2024-01-15",
        "at": "2024-01-15T10:30:00+00:00",
        "naive": "2024-01-15T10:30:00.000005",
        "clock": "08:00:00",
        "took": 90.0,
        "id": "12345678-1234-5678-1234-567812345678",
        "tags": ["a", "b"],
        "pair": [1, 2],
    }
    assert isinstance(decode(text, "json")["count"], int)


def test_decimal_keeps_digits_as_string_and_fits_integer_and_float() -> None:
    assert decode(encode(coerce(Decimal("7"), VT.INTEGER), VT.INTEGER), "integer") == 7
    assert decode(encode(coerce(Decimal("0.1"), VT.FLOAT), VT.FLOAT), "float") == 0.1
    with pytest.raises(XComValueError):
        coerce(Decimal("1.5"), VT.INTEGER)


@pytest.mark.parametrize(
    ("value", "vtype"),
    [
        (1, VT.STRING),
        (1, VT.BOOLEAN),
        (True, VT.INTEGER),
        (1.5, VT.INTEGER),
        ("1", VT.FLOAT),
        (True, VT.FLOAT),
        ("abc", VT.BINARY),
        (float("nan"), VT.INTEGER),
        ([1], VT.STRING),
    ],
)
def test_values_that_do_not_fit_are_refused(value: Any, vtype: XComValueType) -> None:
    with pytest.raises(XComValueError) as err:
        coerce(value, vtype, task_id="calc", key="k")
    assert "task 'calc': key 'k'" in str(err.value) and vtype.value in str(err.value)


def test_non_finite_floats() -> None:
    for value, text in ((math.inf, '"Infinity"'), (-math.inf, '"-Infinity"'), (math.nan, '"NaN"')):
        stored = BaseXCom.serialize_value(value)  # inferred as float
        assert stored == text and stored.value_type is VT.FLOAT  # type: ignore[attr-defined]
        assert same(decode(stored, "float"), value)
    with pytest.raises(XComValueError) as err:
        BaseXCom.serialize_value({"x": math.nan}, task_id="t", key="k")
    assert "NaN" in str(err.value) and "value_type=FLOAT" in str(err.value)
    with pytest.raises(XComValueError):
        BaseXCom.serialize_value({"x": Decimal("NaN")})


def test_unserialisable_values_are_clear_errors() -> None:
    with pytest.raises(XComValueError, match="object of type object"):
        BaseXCom.serialize_value({"x": object()}, task_id="t", key="k")
    with pytest.raises(XComValueError, match="bytes inside a JSON"):
        BaseXCom.serialize_value({"x": b"1"})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(XComValueError):
        BaseXCom.serialize_value(loop)


def test_inferred_types() -> None:
    assert BaseXCom.serialize_value(b"ab").value_type is VT.BINARY  # type: ignore[attr-defined]
    assert BaseXCom.serialize_value(bytearray(b"ab")) == '"YWI="'
    assert BaseXCom.serialize_value("s").value_type is VT.JSON  # type: ignore[attr-defined]
    assert BaseXCom.serialize_value(None) == "null"


def test_size_is_counted_in_utf8_bytes() -> None:
    assert check_size('"é"', 4) == 4
    with pytest.raises(XComValueError, match="4 bytes, over the XCom limit of 3"):
        check_size('"é"', 3, task_id="t", key="k")


def test_type_names_parse_with_aliases() -> None:
    assert XComValueType.parse("INTEGER") is VT.INTEGER
    assert XComValueType.parse("int") is VT.INTEGER
    assert XComValueType.parse("bytes") is VT.BINARY
    with pytest.raises(ValueError, match="valid: json, string"):
        XComValueType.parse("decimal")
    with pytest.raises(XComValueError):
        BaseXCom.serialize_value(1, value_type="decimal", task_id="t", key="k")


@pytest.mark.parametrize(
    ("vt", "text", "value"),
    [
        (XComValueType.STRING, "42", "42"),
        (XComValueType.JSON, '{"a": [1, 2]}', {"a": [1, 2]}),
        (XComValueType.INTEGER, "-7", -7),
        (XComValueType.FLOAT, "2.5", 2.5),
        (XComValueType.BOOLEAN, " Yes ", True),
        (XComValueType.BOOLEAN, "0", False),
        (XComValueType.BINARY, "aGk=", b"hi"),
    ],
)
def test_from_text_reads_each_type(vt: XComValueType, text: str, value: object) -> None:
    assert vt.from_text(text) == value


@pytest.mark.parametrize(
    ("vt", "text", "message"),
    [
        (XComValueType.INTEGER, "4.2", "'4.2' is not a valid integer"),
        (XComValueType.JSON, "{nope", "'{nope' is not valid JSON"),
        (XComValueType.BOOLEAN, "maybe", "'maybe' is not a valid boolean"),
        (XComValueType.BINARY, "***", "not a valid binary (give binary values as base64)"),
    ],
)
def test_from_text_names_what_is_wrong(vt: XComValueType, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        vt.from_text(text)
