"""One contract, every backend: memory, local_file and the database on four engines."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from decimal import Decimal

import pytest

from qarion_etl.errors import UsageError, XComNotFound, XComValueError
from qarion_etl.xcom import MISSING, BaseXCom, XComService, XComValueType


@pytest.fixture
def svc(backend: BaseXCom) -> XComService:
    return XComService(backend, default_flow_id="flow_a")


def count(svc: XComService, **filters: object) -> int:
    return len(svc.list(limit=None, **filters))  # type: ignore[arg-type]


def test_push_then_pull_with_key(svc: XComService) -> None:
    svc.push("t1", {"rows": 10, "status": "ok"}, key="stats")
    assert svc.pull("t1", key="stats") == {"rows": 10, "status": "ok"}
    assert svc.pull("t1") is None  # other key: nothing


def test_default_key_is_return_value(svc: XComService) -> None:
    svc.push("t1", [1, 2, 3])
    assert svc.pull("t1", key="return_value") == [1, 2, 3]
    assert [e.key for e in svc.list()] == ["return_value"]


def test_same_identity_replaces_and_keeps_one_row(svc: XComService) -> None:
    for run, batch in ((None, None), ("r1", None), (None, 3), ("r1", 3)):
        svc.push("t", "first", dag_run_id=run, batch_id=batch)
        svc.push("t", "second", dag_run_id=run, batch_id=batch)
        assert svc.pull("t", dag_run_id=run, batch_id=batch) == "second"
    assert count(svc) == 4


def test_newest_push_wins_when_filters_match_several(svc: XComService) -> None:
    svc.push("t", "batch1", batch_id=1)
    svc.push("t", "batch3", batch_id=3)
    svc.push("t", "batch2", batch_id=2)
    assert svc.pull("t") == "batch2"
    assert svc.pull("t", batch_id=1) == "batch1"
    svc.push("t", "batch1-again", batch_id=1)
    assert svc.pull("t") == "batch1-again"


def test_service_defaults_apply_to_push_and_pull(backend: BaseXCom) -> None:
    svc = XComService(backend, default_flow_id="f", default_batch_id=7, default_dag_run_id="run-7")
    svc.push("t", 1)
    other = XComService(backend)
    assert other.pull("t", flow_id="f", batch_id=7, dag_run_id="run-7") == 1
    assert other.pull("t", flow_id="f", batch_id=8) is None
    assert svc.pull("t") == 1
    assert svc.pull("t", batch_id=8) is None


def test_flows_are_isolated(backend: BaseXCom) -> None:
    a = XComService(backend, default_flow_id="a")
    b = XComService(backend, default_flow_id="b")
    a.push("t", "from a")
    b.push("t", "from b")
    assert a.pull("t") == "from a"
    assert b.pull("t") == "from b"
    assert a.clear() == 1
    assert b.pull("t") == "from b"


def test_default_and_missing(svc: XComService) -> None:
    assert svc.pull("nope") is None
    assert svc.pull("nope", default=0) == 0
    with pytest.raises(XComNotFound) as err:
        svc.pull("nope", key="k", batch_id=4, default=MISSING)
    assert (
        "task 'nope'" in str(err.value)
        and "key 'k'" in str(err.value)
        and "batch 4" in str(err.value)
    )
    with pytest.raises(XComNotFound):
        svc.get("nope")


def test_explicit_none_is_stored(svc: XComService) -> None:
    svc.push("t", None)
    assert svc.pull("t", default="absent") is None
    assert count(svc) == 1
    assert svc.get("t") is None


def test_pull_many_returns_every_requested_id(svc: XComService) -> None:
    svc.push("a", 1)
    svc.push("b", {"x": 2})
    svc.push("a", 10, batch_id=2)
    assert svc.pull_many(["a", "b", "c"]) == {"a": 10, "b": {"x": 2}, "c": None}
    assert svc.pull_many(["a", "c"], batch_id=None, default=-1) == {"a": 10, "c": -1}
    assert svc.pull_many(["a"], key="other") == {"a": None}


def test_clear_counts_by_each_filter(svc: XComService) -> None:
    for task in ("t1", "t2"):
        for key in ("return_value", "k"):
            for run, batch in (("r1", 1), ("r2", 2)):
                svc.push(task, f"{task}{key}{run}", key=key, dag_run_id=run, batch_id=batch)
    svc.push("t1", "other flow", flow_id="flow_b")
    assert svc.clear(key="k", batch_id=2) == 2
    assert svc.clear(dag_run_id="r2") == 2
    assert svc.clear(task_id="t1") == 2
    assert svc.clear(task_id="t1") == 0
    assert svc.clear(flow_id="flow_a") == 2
    assert svc.clear(flow_id="flow_a") == 0
    assert svc.pull("t1", flow_id="flow_b") == "other flow"


def test_clear_older_than(svc: XComService) -> None:
    svc.push("old", 1)
    time.sleep(0.05)
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    svc.push("new", 2)
    assert svc.clear(older_than=cutoff) == 1
    assert svc.pull("old") is None and svc.pull("new") == 2
    assert svc.clear(older_than=dt.timedelta(days=1)) == 0


@pytest.mark.parametrize(
    ("value", "vtype", "expected"),
    [
        ("text", XComValueType.STRING, "text"),
        ("", XComValueType.STRING, ""),
        (42, XComValueType.INTEGER, 42),
        (-(2**63), XComValueType.INTEGER, -(2**63)),
        (Decimal("12"), XComValueType.INTEGER, 12),
        (1.5, XComValueType.FLOAT, 1.5),
        (3, XComValueType.FLOAT, 3.0),
        (float("inf"), XComValueType.FLOAT, float("inf")),
        (True, XComValueType.BOOLEAN, True),
        (False, XComValueType.BOOLEAN, False),
        (b"\x00\xffbytes", XComValueType.BINARY, b"\x00\xffbytes"),
        (b"raw", None, b"raw"),
        (
            {"key": "value", "n": [1, 2.5, None, True]},
            XComValueType.JSON,
            {"key": "value", "n": [1, 2.5, None, True]},
        ),
        ("text", None, "text"),
        (
            {"d": Decimal("1.25"), "day": dt.date(2024, 1, 15)},
            None,
            {"d": 1.25, "day": "2024-01-15"},
        ),
        ("ünïcødé ✓ 🚀", "string", "ünïcødé ✓ 🚀"),
    ],
)
def test_value_types_round_trip(
    svc: XComService, value: object, vtype: object, expected: object
) -> None:
    svc.push("t", value, value_type=vtype)  # type: ignore[arg-type]
    got = svc.pull("t")
    assert got == expected
    assert type(got) is type(expected)


def test_nan_round_trips_as_float(svc: XComService) -> None:
    svc.push("t", float("nan"))
    got = svc.pull("t")
    assert isinstance(got, float) and math.isnan(got)
    assert svc.list()[0].value_type == "float"


def test_value_that_does_not_fit_its_type_names_task_and_key(svc: XComService) -> None:
    with pytest.raises(XComValueError) as err:
        svc.push("calc", "forty-two", key="answer", value_type=XComValueType.INTEGER)
    assert "task 'calc'" in str(err.value) and "key 'answer'" in str(err.value)
    with pytest.raises(XComValueError):
        svc.push("calc", {"nan": float("nan")}, key="answer")
    with pytest.raises(XComValueError):
        svc.push("calc", object(), key="answer")
    assert count(svc) == 0


def test_max_value_bytes_is_enforced_before_writing(backend: BaseXCom) -> None:
    backend.max_value_bytes = 1000
    svc = XComService(backend, default_flow_id="f")
    svc.push("t", "x" * 900)
    with pytest.raises(XComValueError) as err:
        svc.push("t", "y" * 1001)
    assert "dataset" in str(err.value) and "task 't'" in str(err.value)
    assert svc.pull("t") == "x" * 900


def test_full_size_value_fits(backend: BaseXCom) -> None:
    svc = XComService(backend, default_flow_id="f")
    big = "é" * (backend.max_value_bytes // 2 - 2)  # type: ignore[operator]
    svc.push("t", big)
    assert svc.pull("t") == big
    entry = svc.list()[0]
    assert entry.size == len(big.encode()) + 2
    assert len(entry.preview) <= backend.preview_chars


def test_list_is_light_newest_first_filtered_and_limited(svc: XComService) -> None:
    for i in range(5):
        svc.push(f"t{i}", {"i": i, "pad": "z" * 500}, batch_id=i % 2)
    entries = svc.list()
    assert [e.task_id for e in entries] == ["t4", "t3", "t2", "t1", "t0"]
    assert [e.task_id for e in svc.list(limit=2)] == ["t4", "t3"]
    assert [e.task_id for e in svc.list(batch_id=1)] == ["t3", "t1"]
    assert [e.task_id for e in svc.list(task_id="t2")] == ["t2"]
    e = entries[0]
    assert e.value_type == "json" and e.size > 500 and e.flow_id == "flow_a" and e.batch_id == 0
    assert e.preview.startswith('{"i":4') and e.preview.endswith("…") and len(e.preview) <= 60
    assert e.to_dict()["created_at"].startswith(str(dt.datetime.now(dt.UTC).year))


def test_push_many_and_batch(svc: XComService) -> None:
    assert svc.push_many([{"task_id": f"t{i}", "value": i} for i in range(50)]) == 50
    with svc.batch():
        for i in range(50):
            svc.push(f"t{i}", i * 2)
        assert svc.pull("t49") == 98  # reads see the open batch's writes
    assert svc.pull_many([f"t{i}" for i in range(50)]) == {f"t{i}": i * 2 for i in range(50)}
    assert count(svc) == 50


def test_batch_rolls_back_on_error(svc: XComService) -> None:
    # Pushes in a batch are written when it ends: an error in the block writes none of
    # them, on every backend (transactional or not).
    svc.push("kept", 1)
    with pytest.raises(RuntimeError), svc.batch():
        svc.push("lost", 2)
        raise RuntimeError("boom")
    assert svc.pull("lost") is None and svc.pull("kept") == 1


def test_identity_parts_are_checked(svc: XComService, backend: BaseXCom) -> None:
    with pytest.raises(UsageError):
        XComService(backend).push("t", 1)  # no flow at all
    with pytest.raises(UsageError):
        svc.push("", 1)
    with pytest.raises(UsageError):
        svc.push("t", 1, batch_id="5")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        svc.push("t" * 251, 1)


def test_odd_ids_are_stored_exactly(svc: XComService) -> None:
    ids = ["../../etc/passwd", "a/b", "CASE", "case", "ünï ✓", ".", "x" * 250]
    for i, tid in enumerate(ids):
        svc.push(tid, i, key=tid, dag_run_id=tid)
    for i, tid in enumerate(ids):
        assert svc.pull(tid, key=tid, dag_run_id=tid) == i
    assert count(svc) == len(ids)


def test_threads_lose_nothing(svc: XComService) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                svc.push(f"w{n}", i, key=f"k{i}")
                assert svc.pull(f"w{n}", key=f"k{i}") == i
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert count(svc) == 300


def test_push_many_rejects_unknown_fields(svc: XComService) -> None:
    with pytest.raises(UsageError, match=r"push_many: unknown field\(s\) \['bogus'\]"):
        svc.push_many([{"task_id": "t", "value": 1, "bogus": 2}])
    assert count(svc) == 0
