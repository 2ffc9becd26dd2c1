"""The shop project (``tests/fixtures/shop``) beside the same project in dbt-duckdb.

Both build it on a fresh DuckDB file, in one process each: ours is ``qarion-etl run --all``
(seeds loaded by the bulk path, models, every check), dbt's is ``dbt build`` (``dbt seed``,
``dbt run`` and ``dbt test`` in graph order). They run in turn, a few times, at 1x (the
fixture's files) and at 1,000x (the files repeated with shifted ids), and the medians are
printed as a ratio. Two more lines set our run beside the same project with every
``[[tasks.checks]]`` removed, as whole processes and as the sum of the task times (the
engine work, without start-up): checks should add at most 10 %. The last line says
whether both tools' marts hold the same numbers. dbt seeds the 1,000x files in about 4 s,
so both sides load them through their own seed path.

dbt lives in a virtualenv of its own, made on first use under ``benchmarks/.data/dbt-venv``
(``BENCH_DBT_VENV`` to move it). ``dbt-core`` is kept below 1.12, whose parser package
downloads a wheel from outside the package index while it installs. Without a venv (no
index reachable) the benchmark says so and skips. ``BENCH_SHOP_REPEAT`` (default 3) sets
the runs per side, ``BENCH_SHOP_SCALES`` (default ``1,1000``) the scales.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import DATA, child_env, header, qarion_cmd, ratio_line
from benchmarks.shop_projects import dbt_project, qarion_project, scaled_data

DBT_VENV = Path(os.environ.get("BENCH_DBT_VENV", DATA / "dbt-venv"))
DBT_PACKAGES = ["dbt-duckdb", "dbt-core<1.12"]
DBT_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}
MARTS_SQL = (
    "SELECT COUNT(*), SUM(number_of_orders), "
    "ROUND(CAST(SUM(customer_lifetime_value) AS DOUBLE), 2) "
    "FROM {schema}.customers"
)


def dbt_executable() -> Path | None:
    """dbt in its own venv, installed on first use; ``None`` (with the reason printed) when
    it cannot be installed."""
    dbt = DBT_VENV / "bin" / "dbt"
    if dbt.exists():
        return dbt
    print(f"installing {' '.join(DBT_PACKAGES)} into {DBT_VENV} ...", flush=True)
    start = time.perf_counter()
    pip = [str(DBT_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    steps = [
        [sys.executable, "-m", "venv", str(DBT_VENV)],
        [*pip, "--disable-pip-version-check", *DBT_PACKAGES],
    ]
    for step in steps:
        try:
            subprocess.run(step, check=True, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            shutil.rmtree(DBT_VENV, ignore_errors=True)
            print(f"dbt shop: skipped, dbt-duckdb could not be installed: {detail.strip()[-400:]}")
            return None
    print(f"dbt installed in {time.perf_counter() - start:.0f} s")
    return dbt


def dbt_versions(dbt: Path) -> str:
    code = "import importlib.metadata as m; print(m.version('dbt-core'), m.version('dbt-duckdb'))"
    out = subprocess.run(
        [str(dbt.parent / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    core, duckdb = out.stdout.split()
    return f"dbt-core {core}, dbt-duckdb {duckdb}"


def fresh_run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Remove the project's warehouse, then run ``argv`` in ``cwd``: its wall time and stdout."""
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (cwd / name).unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=child_env(env), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv[:3])} exited {done.returncode}: " + " | ".join(tail))
    return elapsed, done.stdout


def dbt_side(dbt: Path, project: Path) -> Callable[[], dict[str, float]]:
    """One ``dbt build`` on a fresh warehouse: its wall time."""

    def run() -> dict[str, float]:
        elapsed, _ = fresh_run([str(dbt), "build", "--profiles-dir", "."], project, DBT_ENV)
        return {"dbt build": elapsed}

    return run


def our_side(project: Path, name: str) -> Callable[[], dict[str, float]]:
    """One ``run --all`` on a fresh warehouse: its wall time, and the sum of its task times
    (the engine work, without start-up), read from ``--json``."""

    def run() -> dict[str, float]:
        elapsed, out = fresh_run([*qarion_cmd(), "run", "--all", "--json"], project)
        doc = json.loads(out)
        tasks = [t for flow in doc.get("flows", [doc]) for t in flow["tasks"]]
        return {name: elapsed, f"{name}, task time": sum(t["duration_seconds"] for t in tasks)}

    return run


def marts_line(ours: Path, theirs: Path) -> str:
    """Whether both warehouses' ``customers`` marts hold the same totals."""
    import duckdb

    figures = []
    for path, schema in ((ours, "shop"), (theirs, "main")):
        with duckdb.connect(str(path), read_only=True) as con:
            figures.append(con.execute(MARTS_SQL.format(schema=schema)).fetchone())
    verdict = "agree" if figures[0] == figures[1] else "DIFFER"
    return (
        f"marts {verdict} (customers, orders, lifetime value): ours {figures[0]}, dbt {figures[1]}"
    )


def measure(
    sides: list[Callable[[], dict[str, float]]], repeat: int
) -> tuple[dict[str, float], list[str]]:
    """Run each side once to warm up (dbt's parse cache, our bytecode), then ``repeat``
    times in turn: the median of every figure, and why the sides that failed did."""
    figures: dict[str, list[float]] = {}
    failed: dict[int, str] = {}
    for round_number in range(repeat + 1):
        for number, side in enumerate(sides):
            if number in failed:
                continue
            try:
                measured = side()
            except RuntimeError as exc:
                failed[number] = str(exc)
                continue
            for name, value in measured.items():
                if round_number:
                    figures.setdefault(name, []).append(value)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    return medians, list(failed.values())


def report(label: str, med: dict[str, float]) -> None:
    """The ratio lines of one scale, for the figures that were measured."""
    if {"dbt build", "run --all"} <= med.keys():
        print(
            ratio_line(
                f"{label}: run --all vs dbt build", med["run --all"], med["dbt build"], peer="dbt"
            )
        )
    for suffix in ("", ", task time"):
        with_checks, without = f"run --all{suffix}", f"run --all without checks{suffix}"
        if {with_checks, without} <= med.keys():
            name = f"{label}: with checks{suffix}"
            print(ratio_line(name, med[with_checks], med[without], 1.10, peer="without"))


def scale(factor: int, dbt: Path, repeat: int) -> None:
    """Both tools on the shop at ``factor`` times its data; prints the ratios."""
    data = scaled_data(factor)
    work = DATA / f"dbt_shop_{factor}x"
    ours = qarion_project(work / "ours", data)
    plain = qarion_project(work / "ours_no_checks", data, checks=False)
    theirs = dbt_project(work / "dbt", data, threads=os.cpu_count() or 1)
    sides = [dbt_side(dbt, theirs), our_side(ours, "run --all")]
    sides.append(our_side(plain, "run --all without checks"))
    med, failed = measure(sides, repeat)
    label = f"shop {factor:,}x"
    print(f"{label}: " + ", ".join(f"{name} {t:.3f} s" for name, t in med.items()))
    for why in failed:
        print(f"{label}: not measured: {why}")
    report(label, med)
    if {"dbt build", "run --all"} <= med.keys():
        print(f"{label}: " + marts_line(ours / "warehouse.duckdb", theirs / "warehouse.duckdb"))


def main() -> None:
    header("the shop project beside dbt-duckdb (seed, run and test on a fresh DuckDB file)")
    dbt = dbt_executable()
    if dbt is None:
        return
    repeat = int(os.environ.get("BENCH_SHOP_REPEAT", "3"))
    factors = [int(f) for f in os.environ.get("BENCH_SHOP_SCALES", "1,1000").split(",")]
    threads = os.cpu_count() or 1
    print(
        f"{dbt_versions(dbt)} with {threads} threads (our default --max-workers); "
        f"medians of {repeat} runs per side, taken in turn"
    )
    for factor in factors:
        scale(factor, dbt, repeat)


if __name__ == "__main__":
    main()
