"""Stress: 8 processes × 4 threads of first runs, pushes and listings, with the cores busy.

Every process starts at the same moment against a fresh metadata database (so its tables
and the flows' schemas are created by whoever comes first) and runs, on four threads:
a first run of a flow of its own, and three loops that push values and list them back.
Busy loops started by the test keep both cores loaded. Nothing may be lost: every push
that returned is read back with its value, every listing holds every push acknowledged
before it began, every run is recorded with the status its caller saw.

On SQLite and PostgreSQL nothing may fail. A DuckDB file has one writer process at a
time: there a process that cannot open it must be refused with the clear "in use by
another process" error (exit code 3), and what the others acknowledged must hold.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_URL, require_service, unique_name
from tests.runkit import drop_metadata

pytestmark = pytest.mark.slow

PROCESSES, THREADS, PUSHES = 8, 4, 20


@pytest.fixture
def busy_cores() -> Iterator[None]:
    """One busy loop per core for the length of the test."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for p in loops:
            p.kill()
            p.wait()


FLOW = """\
id = "{flow}"
namespace = "{ns}"
[[tasks]]
id = "a"
type = "transformation"
target_dataset_id = "a_out"
[tasks.config]
sql = "SELECT 1 AS x"
[[tasks]]
id = "b"
type = "transformation"
target_dataset_id = "b_out"
[tasks.config]
sql = "SELECT 2 AS y"
"""


def _worker(config: str, index: int, barrier: Any, out: Any) -> None:  # in a child process
    from qarion_etl.errors import QarionError
    from qarion_etl.project import Project
    from qarion_etl.runner import FlowRunner, RunOptions

    report: dict[str, Any] = {"index": index, "pushed": {}, "run": None, "refused": [],
                              "errors": [], "listings": 0}  # fmt: skip
    lock = threading.Lock()
    try:
        barrier.wait()
        project = Project.load(Path(config))
    except QarionError as exc:
        report["refused"].append(str(exc))
        out.put(report)
        return

    def run() -> None:
        try:
            result = FlowRunner(project).run(
                project.config.root / "flows" / f"f{index}.toml",
                RunOptions(run_id=f"run{index}", max_workers=2),
            )
            report["run"] = str(result.status)
        except QarionError as exc:
            report["refused"].append(f"run: {exc}")

    def push_and_list(thread: int) -> None:
        try:
            svc = project.xcom_service("stress")
            for i in range(PUSHES):
                task, key = f"p{index}_t{thread}", f"k{i}"
                svc.push(task, {"p": index, "t": thread, "i": i}, key=key, dag_run_id="shared")
                with lock:
                    report["pushed"][f"{task}/{key}"] = i
                if i % 5 == 4:  # a listing holds every push acknowledged before it
                    with lock:
                        before = {k for k in report["pushed"] if k.startswith(f"p{index}_")}
                    listed = {
                        f"{e.task_id}/{e.key}"
                        for e in svc.list(flow_id="stress", dag_run_id="shared", limit=None)
                    }
                    missing = before - listed
                    if missing:
                        report["errors"].append(f"listing missed {sorted(missing)[:3]}")
                    with lock:
                        report["listings"] += 1
        except QarionError as exc:
            report["refused"].append(f"push: {exc}")
        except Exception:
            report["errors"].append(traceback.format_exc())

    threads = [threading.Thread(target=run)] + [
        threading.Thread(target=push_and_list, args=(t,)) for t in range(1, THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    project.close()
    out.put(report)


def _project(root: Path, metadata: str, engine: str, namespace: str) -> Path:
    root.mkdir(parents=True)
    (root / "flows").mkdir()
    for i in range(PROCESSES):
        ns = f"{namespace}_f{i}"
        (root / "flows" / f"f{i}.toml").write_text(FLOW.format(flow=f"f{i}", ns=ns))
    (root / "qarion-etl.toml").write_text(
        f'[engine]\nurl = "{engine}"\n[metadata]\nurl = "{metadata}"\nnamespace = "{namespace}"\n'
    )
    return root


@pytest.mark.parametrize(
    "kind", ["sqlite", "duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_nothing_is_lost_under_load(tmp_path: Path, kind: str, busy_cores: None) -> None:
    namespace = unique_name("st")
    if kind == "postgres":
        require_service("postgres")
        metadata = engine = PG_URL
    else:
        suffix = "db" if kind == "sqlite" else "duckdb"
        metadata = f"{kind}:///{tmp_path / 'p' / '.qarion' / f'metadata.{suffix}'}"
        engine = f"sqlite:///{tmp_path / 'p' / 'warehouse.db'}"
    project = _project(tmp_path / "p", metadata, engine, namespace)
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(str(project / "qarion-etl.toml"), i, barrier, out))
        for i in range(PROCESSES)
    ]
    try:
        for w in workers:
            w.start()
        reports = [out.get(timeout=600) for _ in workers]
        for w in workers:
            w.join(60)
            assert w.exitcode == 0
        for r in reports:
            assert not r["errors"], r["errors"]
            if kind != "duckdb":
                assert not r["refused"], r["refused"]
                assert r["run"] == "success", r
                assert len(r["pushed"]) == (THREADS - 1) * PUSHES and r["listings"]
            for refusal in r["refused"]:
                assert "in use by another process" in refusal, refusal
        acknowledged = {k: v for r in reports for k, v in r["pushed"].items()}
        if kind == "duckdb":
            assert acknowledged, "no process could open the DuckDB file"
        _check_everything_is_there(project, acknowledged, reports)
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
        if kind == "postgres":
            drop_metadata(PG_URL, namespace)
            from tests.runkit import drop_namespace

            for i in range(PROCESSES):
                drop_namespace(PG_URL, f"{namespace}_f{i}")


def _check_everything_is_there(
    project: Path, acknowledged: dict[str, int], reports: list[dict[str, Any]]
) -> None:
    from qarion_etl.project import Project

    with Project.load(project / "qarion-etl.toml") as p:
        svc = p.xcom_service("stress")
        entries = svc.list(flow_id="stress", dag_run_id="shared", limit=None)
        listed = {f"{e.task_id}/{e.key}" for e in entries}
        assert set(acknowledged) <= listed, sorted(set(acknowledged) - listed)[:5]
        assert len(entries) == len(listed)  # one row per identity
        for name, i in acknowledged.items():
            task, key = name.split("/")
            value = svc.pull(task, key=key, dag_run_id="shared")
            assert value is not None and value["i"] == i, (name, value)
        store = p.run_store()
        for r in reports:
            if r["run"] is None:
                continue
            run = store.get_run(f"run{r['index']}", f"f{r['index']}")
            assert run is not None and str(run.status) == r["run"], (r, run)
        runs = {(x.flow_id, x.dag_run_id): x for x in store.list_runs(limit=100)}
        assert all(str(x.status) in ("success", "failed") for x in runs.values()), runs
    print(json.dumps({"acknowledged": len(acknowledged), "runs": len(runs)}))
