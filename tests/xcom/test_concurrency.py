"""Concurrent writers in separate processes lose nothing and never duplicate an identity."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.xcom import XComService, codec
from qarion_etl.xcom.backends.database import DatabaseXComBackend
from tests.conftest import unique_name
from tests.xcom.conftest import drop_table

pytestmark = pytest.mark.slow


def _pusher(
    url: str, table: str, worker: int, count: int, start_at: float, same_identity: bool
) -> str:
    """Runs in a child process; returns "" or the error it met."""
    try:
        db = DatabaseService(url)
        svc = XComService(
            DatabaseXComBackend(db, table_name=table), default_flow_id="flow", default_batch_id=1
        )
        time.sleep(max(0.0, start_at - time.time()))
        for i in range(count):
            if same_identity:
                svc.push("shared", {"worker": worker, "i": i})
            else:
                svc.push(f"w{worker}", i, key=f"k{i}")
        svc.close()
        db.close()
        return ""
    except BaseException as exc:  # noqa: BLE001 - the parent asserts on it
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture
def table(metadata_url: str) -> Iterator[tuple[str, str]]:
    name = unique_name("xcom")
    db = DatabaseService(metadata_url)
    backend = DatabaseXComBackend(db, table_name=name)
    XComService(backend, default_flow_id="setup").push("setup", 0)  # table exists before the race
    codec.clear_values(backend, flow_id="setup")
    yield metadata_url, name
    drop_table(backend)
    db.close()


def _run(url: str, name: str, workers: int, count: int, same_identity: bool) -> list[str]:
    ctx = mp.get_context("spawn")
    start_at = time.time() + 3.0
    with ctx.Pool(workers) as pool:
        results = [
            pool.apply_async(_pusher, (url, name, w, count, start_at, same_identity))
            for w in range(workers)
        ]
        return [r.get(timeout=300) for r in results]


def _service(url: str, name: str) -> XComService:
    return XComService(
        DatabaseXComBackend(DatabaseService(url), table_name=name), default_flow_id="flow"
    )


def test_four_processes_times_500_pushes_lose_nothing(table: tuple[str, str]) -> None:
    url, name = table
    errors = _run(url, name, 4, 500, same_identity=False)
    assert errors == ["", "", "", ""]
    svc = _service(url, name)
    assert len(svc.list(limit=None)) == 2000
    for w in range(4):
        got = svc.pull_many([f"w{w}"], key="k499")
        assert got == {f"w{w}": 499}
    svc.close()


def test_two_processes_upserting_one_identity_end_with_one_row(table: tuple[str, str]) -> None:
    url, name = table
    errors = _run(url, name, 2, 1000, same_identity=True)
    assert errors == ["", ""]
    svc = _service(url, name)
    entries = svc.list(limit=None)
    assert [(e.task_id, e.key) for e in entries] == [("shared", "return_value")]
    last = svc.pull("shared", batch_id=1)
    assert last["i"] == 999  # one of the two writers' final push is the newest
    svc.close()


def test_threads_share_one_backend(tmp_path: Path) -> None:
    import threading

    db = DatabaseService(f"sqlite:///{tmp_path / 't.db'}")
    svc = XComService(DatabaseXComBackend(db), default_flow_id="f")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with svc.batch():
                for i in range(200):
                    svc.push(f"t{n}", i, key=str(i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(svc.list(limit=None)) == 1600
    svc.close()
    db.close()


def test_pushes_in_a_forked_child_use_their_own_connection(tmp_path: Path) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'f.db'}")
    svc = XComService(DatabaseXComBackend(db), default_flow_id="f")
    svc.push("parent", 1)
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=lambda: svc.push("child", 2))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    svc.push("parent", 3)
    assert svc.pull_many(["parent", "child"]) == {"parent": 3, "child": 2}
    svc.close()
    db.close()
