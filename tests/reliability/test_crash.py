"""Crashes: a real ``qarion-etl run`` killed mid-ingestion, mid-transformation and between tasks.

After SIGKILL every dataset is either as it was or fully written, the next run leaves no
staging table, and ``run --resume RUN_ID`` completes the run with the same datasets and
XComs as an uninterrupted run. SIGTERM and SIGINT stop the run cleanly with exit 130.
"""

from __future__ import annotations

import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import database_url, unique_name
from tests.helpers import make_project, write_flow
from tests.reliability import procs
from tests.runkit import drop_namespace, query, table, table_names

FLOW = "crashy"
DATASETS = ["orders_landing", "orders_stats", "high_value_orders"]
ROWS = {"sqlite": 400_000, "duckdb": 8_000_000, "postgres": 1_000_000, "mariadb": 200_000}

#: A slow expression per dialect whose value is always 1, so a slow run and a fast run agree.
SLOW = {
    "sqlite": "(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {n}) "
    "SELECT MIN(1, COUNT(*)) FROM r)",
    "duckdb": "(SELECT LEAST(1, COUNT(*)) FROM range({n}) a, range(2000) b WHERE hash(a.range * b.range) > 0)",
    "postgres": "(SELECT LEAST(1, COUNT(*)) FROM generate_series(1, {n}))",
    "mariadb": "(SELECT LEAST(1, COUNT(*)) FROM (WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL "
    "SELECT i + 1 FROM r WHERE i < {n}) SELECT i FROM r) s)",
}
SLOW_N = {"sqlite": 40_000_000, "duckdb": 600_000, "postgres": 60_000_000, "mariadb": 8_000_000}


def flow_text(namespace: str, kind: str) -> str:
    # Slow unless the run says --var slow=1 (the expression's value does not change).
    one = SLOW[kind].format(n="{{ var('slow', " + str(SLOW_N[kind]) + ") }}")
    stats = (
        '"""\nSELECT COUNT(*) * ' + one + " AS total_count, SUM(value) AS sum_value, "
        "AVG(value) AS avg_value,\n       MAX(value) AS max_value\nFROM {{ source_dataset }}\n"
        + '"""'
    )
    return procs.seed_flow(FLOW, namespace, stats)


@pytest.fixture(scope="session")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return procs.write_orders_csv(tmp_path_factory.mktemp("csv") / "orders.csv", max(ROWS.values()))


def csv_head(src: Path, dst: Path, rows: int) -> None:
    with src.open("rb") as fh, dst.open("wb") as out:
        for i, line in enumerate(fh):
            if i > rows:
                break
            out.write(line)


class Case:
    """One project, its warehouse and its namespace; ``cleanup`` drops what it made."""

    def __init__(self, root: Path, kind: str, big_csv: Path) -> None:
        self.kind = kind
        self.namespace = unique_name("crash")
        self.url = database_url(kind, root)
        if kind == "duckdb":
            self.url = f"duckdb:///{root / 'warehouse.duckdb'}"
        self.project = make_project(root, engine_url=self.url, example=False)
        (root / "data").mkdir(exist_ok=True)
        csv_head(big_csv, root / "data" / "orders.csv", ROWS[kind])
        write_flow(self.project, FLOW, flow_text(self.namespace, kind))
        self.meta = procs.metadata_url(self.project)

    def run(self, *args: str) -> Any:
        """A run to the end, with the slow expression made fast."""
        return procs.run(self.project, "run", FLOW, "--var", "slow=1", *args)

    def datasets(self) -> dict[str, Any]:
        """Each dataset's content: rows of the small one, an exact fingerprint of the big ones."""
        present = set(table_names(self.url, self.namespace))
        out: dict[str, Any] = {}
        for name in DATASETS:
            if name not in present:
                out[name] = None
                continue
            t = table(self.url, self.namespace, name)
            sql = (
                f"SELECT * FROM {t}"
                if name == "orders_stats"
                else f"SELECT COUNT(*), SUM(id), SUM(id * value), MIN(batch_id), MAX(batch_id) FROM {t}"
            )
            out[name] = [tuple(_plain(v) for v in r) for r in query(self.url, sql)]
        return out

    def xcoms(self, run_id: str) -> dict[tuple[str, str], Any]:
        from qarion_etl.project import Project

        with Project.load(self.project / "qarion-etl.toml") as p:
            svc = p.xcom_service(FLOW)
            out = {}
            for e in svc.list(flow_id=FLOW, dag_run_id=run_id, limit=None):
                value = svc.pull(e.task_id, key=e.key, dag_run_id=run_id)
                out[(e.task_id, e.key)] = _plain(_without_timing(value))
            return {k: v for k, v in out.items() if k[1] != "duration_seconds"}

    def cleanup(self) -> None:
        drop_namespace(self.url, self.namespace)


def _plain(value: Any) -> Any:
    """Numbers to 10 significant digits: parallel engines sum floats in varying order."""
    if isinstance(value, (float, Decimal)):
        return float(f"{float(value):.10g}")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "duration_seconds"}
    return value


@pytest.fixture
def case_factory(tmp_path: Path, big_csv: Path):  # type: ignore[no-untyped-def]
    made: list[Case] = []

    def make(kind: str, name: str) -> Case:
        c = Case(tmp_path / name, kind, big_csv)
        made.append(c)
        return c

    yield make
    for c in made:
        c.cleanup()


def baseline(
    case_factory: Any, kind: str, runs: int = 1
) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """Datasets and XComs of the last of ``runs`` uninterrupted runs (so batch ids line up)."""
    base = case_factory(kind, "baseline")
    for i in range(runs):
        done = base.run("--run-id", "base_run" if i == runs - 1 else f"base_{i}")
        assert done.returncode == 0, done.stderr
    return base.datasets(), base.xcoms("base_run")


def kill_and_resume(case: Any, when: str, sig: signal.Signals) -> tuple[int, str]:
    """Start a run, wait for ``when`` (task id that must be running), send ``sig``, then check and resume."""
    proc = procs.start(case.project, "run", FLOW, "--run-id", "r1")
    task, state = when.split(":")
    procs.wait_for(lambda: procs.task_states(case.meta).get(task) == state, proc, what=when)
    if state == "running":
        time.sleep(0.3)  # well inside the task's work
    code, out, err = procs.stop(proc, sig)
    assert "Traceback" not in err, err
    return code, err


def check_consistent(case: Any, before: dict[str, Any], full: dict[str, Any]) -> None:
    """Each dataset is as it was before the run or as a full run writes it."""
    now = case.datasets()
    for name in DATASETS:
        assert now[name] in (before[name], full[name]), f"{name} is half-written: {now[name]}"


def resume_and_compare(case: Any, full: dict[str, Any], full_x: dict[tuple[str, str], Any]) -> None:
    done = case.run("--resume", "r1")
    assert done.returncode == 0, done.stderr
    assert case.datasets() == full
    assert case.xcoms("r1") == full_x
    assert not [n for n in table_names(case.url, case.namespace) if n.startswith("_qtmp_")]
    assert set(procs.task_states(case.meta).values()) == {"success"}
    assert [(r[0], r[1]) for r in procs.runs(case.meta)] == [("r1", "success")]


ENGINES = [
    pytest.param("sqlite"),
    pytest.param("duckdb"),
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow]),
    pytest.param("mariadb", marks=[pytest.mark.mariadb, pytest.mark.slow]),
]


@pytest.mark.parametrize("kind", ENGINES)
def test_sigkill_during_ingestion(case_factory: Any, kind: str) -> None:
    full, full_x = baseline(case_factory, kind)
    case = case_factory(kind, "killed")
    before = case.datasets()
    code, _ = kill_and_resume(case, "ingest_orders:running", signal.SIGKILL)
    assert code == -signal.SIGKILL
    check_consistent(case, before, full)
    assert case.datasets()["orders_landing"] is None  # the first load never became visible
    assert procs.task_states(case.meta)["ingest_orders"] == "running"  # the dead run's last word
    listed = procs.run(case.project, "runs", "list", "--json")
    assert '"status": "abandoned"' in listed.stdout, listed.stdout
    resume_and_compare(case, full, full_x)


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_sigkill_during_transformation_keeps_the_old_table(case_factory: Any, kind: str) -> None:
    full, full_x = baseline(case_factory, kind, runs=2)
    case = case_factory(kind, "killed")
    # A complete earlier run: the datasets exist; a killed rewrite must leave them as they were.
    assert case.run("--run-id", "r0").returncode == 0
    before = case.datasets()
    code, _ = kill_and_resume(case, "calculate_stats:running", signal.SIGKILL)
    assert code == -signal.SIGKILL
    now = case.datasets()
    assert now["orders_stats"] == before["orders_stats"]
    assert now["high_value_orders"] == before["high_value_orders"]
    assert now["orders_landing"] == full["orders_landing"]  # ingest_orders had finished
    states = procs.task_states(case.meta)
    assert states["ingest_orders"] == "success" and states["calculate_stats"] == "running"
    done = case.run("--resume", "r1")
    assert done.returncode == 0, done.stderr
    assert "1 kept" in done.stderr  # ingest_orders is not executed again
    assert case.datasets() == full
    assert case.xcoms("r1") == full_x
    assert not [n for n in table_names(case.url, case.namespace) if n.startswith("_qtmp_")]


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_sigkill_between_tasks(case_factory: Any, kind: str) -> None:
    full, full_x = baseline(case_factory, kind)
    case = case_factory(kind, "killed")
    before = case.datasets()
    code, _ = kill_and_resume(case, "ingest_orders:success", signal.SIGKILL)
    assert code == -signal.SIGKILL
    check_consistent(case, before, full)
    assert case.datasets()["orders_landing"] == full["orders_landing"]
    resume_and_compare(case, full, full_x)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_sigterm_and_sigint_stop_cleanly(case_factory: Any, kind: str, sig: signal.Signals) -> None:
    full, full_x = baseline(case_factory, kind)
    case = case_factory(kind, "stopped")
    before = case.datasets()
    code, err = kill_and_resume(case, "calculate_stats:running", sig)
    assert code == 130, err
    assert "interrupted" in err.lower()
    # The last lines say how to go on.
    assert "Resume with: qarion-etl run crashy --resume r1" in err, err
    assert case.datasets()["orders_stats"] == before["orders_stats"]
    check_consistent(case, before, full)
    assert [(r[0], r[1]) for r in procs.runs(case.meta)] == [("r1", "interrupted")]
    assert procs.task_states(case.meta)["calculate_stats"] == "interrupted"
    resume_and_compare(case, full, full_x)


def test_resume_refuses_a_run_that_is_still_running(case_factory: Any) -> None:
    case = case_factory("sqlite", "live")
    proc = procs.start(case.project, "run", FLOW, "--run-id", "r1")
    try:
        procs.wait_for(
            lambda: procs.task_states(case.meta).get("calculate_stats") == "running", proc
        )
        second = case.run("--resume", "r1")
        assert second.returncode == 2, second.stderr
        assert "still running" in second.stderr and "Traceback" not in second.stderr
        listed = procs.run(case.project, "runs", "list", "--json")
        assert '"status": "running"' in listed.stdout
    finally:
        procs.stop(proc, signal.SIGKILL)
