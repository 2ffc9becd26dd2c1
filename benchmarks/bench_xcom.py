"""XCom throughput beside the raw driver: pushes, batched pushes and point pulls.

For SQLite and PostgreSQL, 10,000 of each operation (batched two ways: pushes inside
``with service.batch()``, and one ``push_many``) through ``XComService`` with the
database backend, and the same SQL statements (the backend's own upsert and
select) through raw ``sqlite3`` / ``psycopg`` with parameters built before the clock
starts (a fresh push time for each run, as real pushes have), pulls decoding the value
they fetch, so the ratio is everything we add: checks, serialisation, hashing, records.
Then ``qarion-etl xcom get`` as a whole process beside ``python -c "import sqlalchemy"``.

Targets: pushes and pulls within 2x of raw on SQLite; ``xcom get`` within 1.5x.
Run: ``python -m benchmarks.bench_xcom`` (``--n 2000`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import header, qarion_cmd, ratio_line, time_process

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def rate_line(name: str, n: int, ours: float, raw: float, target: float | None) -> str:
    line = ratio_line(name, ours, raw, target)
    return f"{line}   ({n / ours:,.0f}/s vs {n / raw:,.0f}/s)"


def timed(
    fn: Callable[..., Any], repeat: int = 3, prepare: Callable[[], Any] | None = None
) -> float:
    """Best of ``repeat`` runs (the same for ours and raw: WAL checkpoints and page-cache
    effects make single runs of the same work vary by up to 2x here). ``prepare`` builds
    the argument of each run before its clock starts."""
    best = float("inf")
    for _ in range(repeat):
        args = () if prepare is None else (prepare(),)
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def fresh_rows(rows: list[tuple[Any, ...]]) -> Callable[[], list[tuple[Any, ...]]]:
    """Each call: the same upserts with a new push time, as every real push has.

    Rewriting a row with identical values is cheaper for SQLite than a real update (the
    indexes on the push time stay as they are), so the raw side must not repeat the very
    same parameters run after run.
    """
    stamp = [0]

    def build() -> list[tuple[Any, ...]]:
        stamp[0] += 1
        return [(*r[:9], r[9] + stamp[0], r[10]) for r in rows]

    return build


def ours(url: str, n: int) -> tuple[dict[str, float], Any]:
    from qarion_etl.db_service import DatabaseService
    from qarion_etl.xcom import XComService, codec
    from qarion_etl.xcom.backends.database import DatabaseXComBackend

    db = DatabaseService(url)
    table = f"bench_xcom_{int(time.time() * 1000) % 10**9}"
    backend = DatabaseXComBackend(db, table_name=table)
    svc = XComService(
        backend, default_flow_id="bench", default_batch_id=1, default_dag_run_id="run"
    )
    svc.push("warm", 0)
    times = {
        "push": timed(
            lambda: [svc.push(f"t{i % 100}", {"i": i, "ok": True}, key=f"k{i}") for i in range(n)]
        ),
    }

    def batched() -> None:
        with svc.batch():
            for i in range(n):
                svc.push(f"t{i % 100}", {"i": i, "ok": False}, key=f"k{i}")

    times["batch"] = timed(batched)
    items = [
        {"task_id": f"t{i % 100}", "value": {"i": i, "ok": None}, "key": f"k{i}"} for i in range(n)
    ]
    times["many"] = timed(lambda: svc.push_many(items))
    times["pull"] = timed(lambda: [svc.pull(f"t{i % 100}", key=f"k{i}") for i in range(n)])
    assert svc.pull("t7", key="k7") == {"i": 7, "ok": None}
    store = backend._store()
    upsert = store._statement("upsert", store._upsert_sql)
    records = [
        codec.make_record(
            backend,
            {"i": i, "ok": True},
            task_id=f"t{i % 100}",
            key=f"r{i}",
            flow_id="bench",
            dag_run_id="run",
            batch_id=1,
        )
        for i in range(n)
    ]
    rows = store._rows(records)
    from qarion_etl.xcom import XComQuery
    from qarion_etl.xcom.records import identity_key

    store.newest(XComQuery("bench", "t1", "r1", "run", 1))  # builds the point-pull statement
    if "identity" in store._stmts:
        # A pull that names every part looks the row up by its identity (the primary key).
        select = store._stmts["identity"]
        pulls: list[tuple[Any, ...]] = [
            (identity_key("bench", f"t{i % 100}", f"r{i}", "run", 1),) for i in range(n)
        ]
    else:  # SQLite: by the filters, through the (task_id, key, pushed_ns) index
        select = store._stmts[("task_id", "key", "flow_id", "dag_run_id", "batch_id")]
        pulls = [(f"t{i % 100}", f"r{i}", "bench", "run", 1) for i in range(n)]
    plan = (upsert, rows, select, pulls)

    def cleanup() -> None:
        backend.close()
        with db.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {db.quote(table)}")
        db.close()

    return times, (plan, cleanup)


def raw_driver(
    cur: Any, begin: str, plan: tuple[str, list[Any], str, list[Any]]
) -> dict[str, float]:
    """The plan's statements on a raw driver cursor in autocommit mode."""
    upsert, rows, select, pulls = plan
    each = fresh_rows(rows)

    def pushes(batch: list[Any]) -> None:
        for row in batch:
            cur.execute(upsert, row)

    def batched(batch: list[Any]) -> None:
        cur.execute(begin)
        for row in batch:
            cur.execute(upsert, row)
        cur.execute("COMMIT")

    def many(batch: list[Any]) -> None:
        cur.execute(begin)
        cur.executemany(upsert, batch)
        cur.execute("COMMIT")

    def pull_all() -> None:
        for p in pulls:  # fetch the row and decode its value, as a caller would
            cur.execute(select, p)
            json.loads(cur.fetchone()[3])

    return {
        "push": timed(pushes, prepare=each),
        "batch": timed(batched, prepare=each),
        "many": timed(many, prepare=each),
        "pull": timed(pull_all),
    }


def raw_sqlite(path: Path, plan: tuple[str, list[Any], str, list[Any]]) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        return raw_driver(conn.cursor(), "BEGIN IMMEDIATE", plan)
    finally:
        conn.close()


def raw_psycopg(plan: tuple[str, list[Any], str, list[Any]]) -> dict[str, float]:
    import psycopg

    conn = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
    try:
        return raw_driver(conn.cursor(), "BEGIN", plan)
    finally:
        conn.close()


def compare(
    name: str, n: int, mine: dict[str, float], raw: dict[str, float], target: float | None
) -> None:
    print(
        rate_line(
            f"{name}: {n:,} pushes, one transaction each", n, mine["push"], raw["push"], target
        )
    )
    print(rate_line(f"{name}: {n:,} pushes in one batch", n, mine["batch"], raw["batch"], target))
    print(
        rate_line(
            f"{name}: {n:,} pushes, push_many (executemany)", n, mine["many"], raw["many"], target
        )
    )
    print(rate_line(f"{name}: {n:,} point pulls", n, mine["pull"], raw["pull"], target))


def bench_cli(folder: Path) -> None:
    config = folder / "qarion-etl.toml"
    config.write_text(f'[metadata]\nurl = "sqlite:///{folder / "cli.db"}"\n')
    base = [*qarion_cmd(), "--config", str(config), "xcom"]
    time_process([*base, "push", "t", '{"avg": 1.5}', "--flow", "f"], repeat=1)
    floor, _ = time_process([sys.executable, "-c", "import sqlalchemy"], repeat=7)
    got, _ = time_process([*base, "get", "t"], repeat=7)
    print(
        ratio_line("qarion-etl xcom get vs python -c 'import sqlalchemy'", got, floor, target=0.7)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv if argv is not None else [])
    n = args.n
    header("xcom")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db_path = folder / "bench.db"
        mine, (plan, cleanup) = ours(f"sqlite:///{db_path}", n)
        raw = raw_sqlite(db_path, plan)
        cleanup()
        compare("sqlite", n, mine, raw, 2.0)
        if not args.skip_postgres:
            try:
                mine, (plan, cleanup) = ours(PG_URL, n)
            except Exception as exc:  # noqa: BLE001 - the server is optional for a local look
                print(f"postgresql: skipped ({type(exc).__name__}: {exc})")
            else:
                raw = raw_psycopg(plan)
                cleanup()
                compare("postgresql", n, mine, raw, None)
        bench_cli(folder)


if __name__ == "__main__":
    main(sys.argv[1:])
