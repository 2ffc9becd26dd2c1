"""The shop project (``tests/fixtures/shop``) beside the same project in dbt-duckdb.

Both build it on a fresh DuckDB file, in one process each: ours is ``qarion-etl run --all``
(seeds loaded by the bulk path, models, every check), dbt's is ``dbt build`` (``dbt seed``,
``dbt run`` and ``dbt test`` in graph order). They run in turn, a few times, at 1x (the
fixture's files) and at 1,000x (the files repeated with shifted ids), and the medians are
printed as a ratio. A second line sets our run beside the same project with every
``[[tasks.checks]]`` removed: checks should add at most 10 %. A third says whether both
tools' marts hold the same numbers.

dbt lives in a virtualenv of its own, made on first use under ``benchmarks/.data/dbt-venv``
(``BENCH_DBT_VENV`` to move it). ``dbt-core`` is kept below 1.12, whose parser package
downloads a wheel from outside the package index while it installs. Without a venv (no
index reachable) the benchmark says so and skips. ``BENCH_SHOP_REPEAT`` (default 3) sets
the runs per side, ``BENCH_SHOP_SCALES`` (default ``1,1000``) the scales.
"""

from __future__ import annotations

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


def fresh_run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Remove the project's warehouse, then run ``argv`` in ``cwd``: its wall time."""
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (cwd / name).unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=child_env(env), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv[:3])} exited {done.returncode}: " + " | ".join(tail))
    return elapsed


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


def measure(sides: dict[str, Callable[[], float]], repeat: int) -> tuple[dict, dict]:
    """Run each side once to warm up (dbt's parse cache, our bytecode), then ``repeat``
    times in turn: the median per side, and why a side that failed did."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    failed: dict[str, str] = {}
    for round_number in range(repeat + 1):
        for name, side in sides.items():
            if name in failed:
                continue
            try:
                elapsed = side()
            except RuntimeError as exc:
                failed[name] = str(exc)
                continue
            if round_number:
                times[name].append(elapsed)
    medians = {name: statistics.median(t) for name, t in times.items() if t}
    return medians, failed


def scale(factor: int, dbt: Path, repeat: int) -> None:
    """Both tools on the shop at ``factor`` times its data; prints the ratios."""
    data = scaled_data(factor)
    work = DATA / f"dbt_shop_{factor}x"
    ours = qarion_project(work / "ours", data)
    plain = qarion_project(work / "ours_no_checks", data, checks=False)
    theirs = dbt_project(work / "dbt", data, threads=os.cpu_count() or 1)
    run_all = [*qarion_cmd(), "run", "--all", "-q"]
    build = [str(dbt), "build", "--profiles-dir", "."]
    med, failed = measure(
        {
            "dbt build": lambda: fresh_run(build, theirs, DBT_ENV),
            "run --all": lambda: fresh_run(run_all, ours),
            "run --all without checks": lambda: fresh_run(run_all, plain),
        },
        repeat,
    )
    label = f"shop {factor:,}x"
    print(f"{label}: " + ", ".join(f"{name} {t:.3f} s" for name, t in med.items()))
    for name, why in failed.items():
        print(f"{label}: {name} not measured: {why}")
    if {"dbt build", "run --all"} <= med.keys():
        ours, dbt_build = med["run --all"], med["dbt build"]
        print(ratio_line(f"{label}: run --all vs dbt build", ours, dbt_build, peer="dbt"))
        print(f"{label}: " + marts_line(ours / "warehouse.duckdb", theirs / "warehouse.duckdb"))
    if {"run --all", "run --all without checks"} <= med.keys():
        with_checks, without = med["run --all"], med["run --all without checks"]
        line = ratio_line(f"{label}: with checks", with_checks, without, 1.10, peer="without")
        print(line)


def main() -> None:
    header("the shop project beside dbt-duckdb (seed, run and test on a fresh DuckDB file)")
    dbt = dbt_executable()
    if dbt is None:
        return
    repeat = int(os.environ.get("BENCH_SHOP_REPEAT", "3"))
    factors = [int(f) for f in os.environ.get("BENCH_SHOP_SCALES", "1,1000").split(",")]
    print(f"{dbt_versions(dbt)}; medians of {repeat} runs per side, taken in turn")
    for factor in factors:
        scale(factor, dbt, repeat)


if __name__ == "__main__":
    main()
