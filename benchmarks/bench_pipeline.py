"""The seed pipeline on a generated orders CSV: a whole ``qarion-etl run`` process beside a
plain script doing the same three statements with the engine's own client.

Printed: whole-process time ratios (DuckDB and SQLite), the engine work inside our run
(sum of task durations) beside the raw script's own statement time, peak memory of the
run at 1M and 5M rows, and the runner's overhead per task on a flow of 1,000 trivial
tasks. Data lives in ``benchmarks/.data/`` (git-ignored). ``BENCH_ROWS`` (default
1000000) and ``BENCH_BIG_ROWS`` (default 5000000) change the sizes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DATA, ROOT, child_env, header, qarion_cmd, ratio_line

SEED_FLOW = (ROOT / "flows" / "data_pipeline.toml").read_text()

RAW_DUCKDB = """
import sys, time, duckdb
t0 = time.perf_counter()
con = duckdb.connect(sys.argv[1])
con.execute("CREATE OR REPLACE TABLE orders_landing AS SELECT *, 1::BIGINT AS batch_id FROM "
            "read_csv(?, header = true, columns = {'id': 'BIGINT', 'value': 'DOUBLE'})", [sys.argv[2]])
con.execute("CREATE OR REPLACE TABLE orders_stats AS SELECT COUNT(*) AS total_count, AVG(value) AS avg_value, "
            "MAX(value) AS max_value, MIN(value) AS min_value FROM orders_landing")
avg = con.execute("SELECT avg_value FROM orders_stats").fetchone()[0]
con.execute(f"CREATE OR REPLACE TABLE high_value_orders AS SELECT * FROM orders_landing WHERE value > {avg!r}")
con.close()
print(time.perf_counter() - t0)
"""

#: The raw DuckDB script plus the checks our ingestion makes (required values present, primary
#: key unique), written the plain way (the unique key by GROUP BY; ours sorts and compares
#: neighbours), to tell the cost of those checks from the runner's own overhead.
RAW_DUCKDB_CHECKED = RAW_DUCKDB.replace(
    'con.execute("CREATE OR REPLACE TABLE orders_stats',
    'con.execute("SELECT 1 FROM orders_landing WHERE id IS NULL OR value IS NULL LIMIT 1").fetchall()\n'
    'con.execute("SELECT id FROM orders_landing GROUP BY id HAVING COUNT(*) > 1 LIMIT 1").fetchall()\n'
    'con.execute("CREATE OR REPLACE TABLE orders_stats',
    1,
)

RAW_SQLITE = """
import csv, sqlite3, sys, time
t0 = time.perf_counter()
con = sqlite3.connect(sys.argv[1])
for t in ("orders_landing", "orders_stats", "high_value_orders"):
    con.execute(f"DROP TABLE IF EXISTS {t}")
con.execute("CREATE TABLE orders_landing (id INTEGER, value REAL, batch_id INTEGER)")
with open(sys.argv[2], newline="") as fh:
    rows = csv.reader(fh)
    next(rows)
    batch = []
    for r in rows:
        batch.append((int(r[0]), float(r[1]), 1))
        if len(batch) == 10000:
            con.executemany("INSERT INTO orders_landing VALUES (?, ?, ?)", batch)
            batch = []
    con.executemany("INSERT INTO orders_landing VALUES (?, ?, ?)", batch)
con.execute("CREATE TABLE orders_stats AS SELECT COUNT(*) AS total_count, AVG(value) AS avg_value, "
            "MAX(value) AS max_value, MIN(value) AS min_value FROM orders_landing")
avg = con.execute("SELECT avg_value FROM orders_stats").fetchone()[0]
con.execute(f"CREATE TABLE high_value_orders AS SELECT * FROM orders_landing WHERE value > {avg!r}")
con.commit()
con.close()
print(time.perf_counter() - t0)
"""

#: The same three statements on PostgreSQL, loading the file the fastest plain way: its
#: bytes straight into ``COPY … FROM STDIN (FORMAT csv)``, parsed by the server.
RAW_POSTGRES = """
import sys, time, psycopg
t0 = time.perf_counter()
con = psycopg.connect(sys.argv[1])
cur = con.cursor()
cur.execute("DROP SCHEMA IF EXISTS bench_raw CASCADE")
cur.execute("CREATE SCHEMA bench_raw")
cur.execute("CREATE TABLE bench_raw.orders_landing (id BIGINT, value DOUBLE PRECISION, batch_id BIGINT DEFAULT 1)")
with open(sys.argv[2], "rb") as fh, cur.copy(
    "COPY bench_raw.orders_landing (id, value) FROM STDIN (FORMAT csv, HEADER true)"
) as copy:
    while data := fh.read(1 << 20):
        copy.write(data)
cur.execute("CREATE TABLE bench_raw.orders_stats AS SELECT COUNT(*) AS total_count, AVG(value) AS avg_value, "
            "MAX(value) AS max_value, MIN(value) AS min_value FROM bench_raw.orders_landing")
avg = cur.execute("SELECT avg_value FROM bench_raw.orders_stats").fetchone()[0]
cur.execute(f"CREATE TABLE bench_raw.high_value_orders AS SELECT * FROM bench_raw.orders_landing WHERE value > {avg!r}")
con.commit()
print(time.perf_counter() - t0)
cur.execute("DROP SCHEMA bench_raw CASCADE")
con.commit()
con.close()
"""

#: The raw PostgreSQL script plus the checks our ingestion makes (required values present,
#: primary key unique), written the plain way.
RAW_POSTGRES_CHECKED = RAW_POSTGRES.replace(
    'cur.execute("CREATE TABLE bench_raw.orders_stats',
    'cur.execute("SELECT 1 FROM bench_raw.orders_landing WHERE id IS NULL OR value IS NULL LIMIT 1")\n'
    'cur.execute("SELECT id FROM bench_raw.orders_landing GROUP BY id HAVING COUNT(*) > 1 LIMIT 1")\n'
    'cur.execute("CREATE TABLE bench_raw.orders_stats',
    1,
)

#: Where the PostgreSQL row runs (``BENCH_PG_URL``); the default is the test server.
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def orders_csv(rows: int) -> Path:
    """``benchmarks/.data/orders_<rows>.csv``, generated once."""
    path = DATA / f"orders_{rows}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        fh.write("id,value\n")
        chunk = []
        for i in range(1, rows + 1):
            chunk.append(f"{i},{rng.uniform(1, 500):.2f}\n")
            if len(chunk) == 100_000:
                fh.write("".join(chunk))
                chunk = []
        fh.write("".join(chunk))
    tmp.replace(path)
    return path


def project(name: str, engine_url: str, csv_path: Path, flow_text: str | None = None) -> Path:
    folder = DATA / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "flows").mkdir(parents=True)
    (folder / "qarion-etl.toml").write_text(f'[engine]\nurl = "{engine_url}"\n')
    text = flow_text or SEED_FLOW.replace('path = "data/orders.csv"', f'path = "{csv_path}"')
    (folder / "flows" / "data_pipeline.toml").write_text(text)
    return folder


def run_child(argv: list[str], cwd: Path | None = None) -> tuple[float, int, str]:
    """Run ``argv``: wall time, the child's own peak RSS (KiB, from ``wait4``) and its stdout."""
    env = child_env({"NO_COLOR": "1"})
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss, out


def best(argv: list[str], cwd: Path | None = None, repeat: int = 3) -> tuple[float, int, str]:
    runs = [run_child(argv, cwd) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def engine_seconds(out: str) -> float:
    doc = json.loads(out)
    return sum(t["duration_seconds"] or 0 for t in doc["tasks"])


def pipeline(engine: str, rows: int) -> None:
    csv_path = orders_csv(rows)
    ext = "duckdb" if engine == "duckdb" else "db"
    proj = project(f"proj_{engine}", f"{engine}:///warehouse.{ext}", csv_path)
    ours, ours_rss, out = best([*qarion_cmd(), "run", "data_pipeline", "--json"], cwd=proj)
    raw_db = DATA / f"raw.{ext}"
    raw_db.unlink(missing_ok=True)
    script = RAW_DUCKDB if engine == "duckdb" else RAW_SQLITE
    raw, raw_rss, raw_out = best([sys.executable, "-c", script, str(raw_db), str(csv_path)])
    print(
        ratio_line(
            f"{engine} {rows:,} rows: whole process",
            ours,
            raw,
            target=1.35 if engine == "duckdb" else None,
        )
    )
    print(
        ratio_line(
            f"{engine} {rows:,} rows: engine work",
            engine_seconds(out),
            float(raw_out.strip()),
            target=1.2 if engine == "duckdb" else 1.25,
        )
    )
    if engine == "duckdb":
        raw_db.unlink(missing_ok=True)
        checked, _, checked_out = best(
            [sys.executable, "-c", RAW_DUCKDB_CHECKED, str(raw_db), str(csv_path)]
        )
        # The plain script skips the checks every ingestion makes (required values, a
        # unique key); beside the script that makes them, the ratio is the runner's own cost.
        print(
            ratio_line(
                f"{engine} {rows:,} rows: whole process vs raw + GROUP BY checks",
                ours,
                checked,
                target=1.35,
            )
        )
        print(
            ratio_line(
                f"{engine} {rows:,} rows: engine work vs raw + GROUP BY checks",
                engine_seconds(out),
                float(checked_out.strip()),
            )
        )
    print(
        f"{engine} {rows:,} rows: peak RSS ours {ours_rss / 1024:.0f} MiB, raw {raw_rss / 1024:.0f} MiB"
    )


def postgres_pipeline(rows: int) -> None:
    """The seed pipeline on PostgreSQL beside the raw psycopg ``COPY`` script."""
    import psycopg

    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        psycopg.connect(plain, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        print(f"postgres {rows:,} rows: skipped, no server at {plain} ({exc})")
        return
    csv_path = orders_csv(rows)
    flow = SEED_FLOW.replace('path = "data/orders.csv"', f'path = "{csv_path}"').replace(
        'namespace = "production"', 'namespace = "bench_ours"'
    )
    proj = project("proj_postgres", PG_URL, csv_path, flow)
    try:
        ours, _, out = best([*qarion_cmd(), "run", "data_pipeline", "--json"], cwd=proj)
        raw, _, raw_out = best([sys.executable, "-c", RAW_POSTGRES, plain, str(csv_path)])
        checked, _, checked_out = best(
            [sys.executable, "-c", RAW_POSTGRES_CHECKED, plain, str(csv_path)]
        )
    finally:
        with psycopg.connect(plain, autocommit=True) as con:
            con.execute("DROP SCHEMA IF EXISTS bench_ours CASCADE")
    print(ratio_line(f"postgres {rows:,} rows: whole process", ours, raw, target=1.3))
    print(
        ratio_line(
            f"postgres {rows:,} rows: engine work",
            engine_seconds(out),
            float(raw_out.strip().splitlines()[0]),
        )
    )
    print(ratio_line(f"postgres {rows:,} rows: whole process vs raw + checks", ours, checked))
    print(
        ratio_line(
            f"postgres {rows:,} rows: engine work vs raw + checks",
            engine_seconds(out),
            float(checked_out.strip().splitlines()[0]),
        )
    )


def memory_growth(engine: str, small: int, big: int) -> None:
    rss = []
    for rows in (small, big):
        proj = project(
            f"mem_{engine}_{rows}",
            f"{engine}:///warehouse.{'duckdb' if engine == 'duckdb' else 'db'}",
            orders_csv(rows),
        )
        rss.append(run_child([*qarion_cmd(), "run", "data_pipeline", "--json"], cwd=proj)[1])
    if engine == "duckdb":
        # DuckDB keeps the table blocks it writes in its buffer pool (up to 80 % of RAM by
        # default), so its own peak grows with the data: the raw scripts show by how much.
        raw_rss: dict[str, list[int]] = {}
        for name, script in (
            ("raw duckdb script", RAW_DUCKDB),
            ("raw + GROUP BY checks", RAW_DUCKDB_CHECKED),
        ):
            raw_rss[name] = []
            for rows in (small, big):
                raw_db = DATA / "raw.duckdb"
                raw_db.unlink(missing_ok=True)
                raw_rss[name].append(
                    run_child([sys.executable, "-c", script, str(raw_db), str(orders_csv(rows))])[1]
                )
            print(
                ratio_line(
                    f"{name} peak RSS {big:,} vs {small:,} rows",
                    raw_rss[name][1] / 1024,
                    raw_rss[name][0] / 1024,
                    unit="MiB",
                )
            )
        print(
            ratio_line(
                f"duckdb peak RSS at {big:,} rows, ours vs raw + GROUP BY checks",
                rss[1] / 1024,
                raw_rss["raw + GROUP BY checks"][1] / 1024,
                unit="MiB",
            )
        )
    print(
        ratio_line(
            f"{engine} peak RSS {big:,} vs {small:,} rows",
            rss[1] / 1024,
            rss[0] / 1024,
            target=1.2,
            unit="MiB",
        )
    )


def trivial_tasks(n: int = 1000) -> None:
    parts = ['id = "many"\nnamespace = "many"\n']
    for i in range(n):
        parts.append(
            f'[[tasks]]\nid = "t{i}"\ntype = "transformation"\n[tasks.config]\nsql = "SELECT {i} AS x"\n'
        )
    proj = project("proj_many", "duckdb:///warehouse.duckdb", orders_csv(1000), "\n".join(parts))
    (proj / "flows" / "data_pipeline.toml").rename(proj / "flows" / "many.toml")
    for workers in ("1", "4"):
        elapsed, _, out = run_child(
            [*qarion_cmd(), "run", "many", "--json", "--max-workers", workers], cwd=proj
        )
        doc = json.loads(out)
        per_task = doc["duration_seconds"] / n * 1000
        verdict = "met" if per_task <= 1.5 else "MISSED"
        print(
            f"{n} trivial tasks, --max-workers {workers}: run {doc['duration_seconds']:.2f} s "
            f"(process {elapsed:.2f} s), {per_task:.2f} ms per task  target <= 1.5 ms: {verdict}"
        )


def main() -> None:
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    big = int(os.environ.get("BENCH_BIG_ROWS", "5000000"))
    header(f"seed pipeline, {rows:,} orders")
    pipeline("duckdb", rows)
    pipeline("sqlite", rows)
    postgres_pipeline(rows)
    header("peak memory")
    memory_growth("duckdb", rows, big)
    memory_growth("sqlite", rows, big)
    header("runner overhead")
    trivial_tasks()


if __name__ == "__main__":
    main()
