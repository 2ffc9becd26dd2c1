"""Start-up costs, whole processes, each beside its floor, in one window.

- ``qarion-etl --help`` beside ``python -c 'import typer'`` (target 1.3x or less);
- ``qarion-etl xcom get`` beside ``python -c 'import sqlalchemy'`` (target 0.6x or less:
  a read of one value never imports SQLAlchemy);
- ``qarion-etl run`` of the seed example (300 rows) beside a raw DuckDB script doing the
  same statements (target 1.5x or less);
- ``qarion-etl validate`` of the example beside ``import typer`` (no target).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, header, qarion_cmd, ratio_line, time_process

RAW_SEED = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE SCHEMA IF NOT EXISTS production")
con.execute("CREATE OR REPLACE TABLE production.orders_landing AS SELECT *, 1 AS batch_id "
            "FROM read_csv(?, columns={'id': 'BIGINT', 'value': 'DOUBLE'}, header=true)", [sys.argv[2]])
con.execute("CREATE OR REPLACE TABLE production.orders_stats AS SELECT COUNT(*) AS total_count, "
            "AVG(value) AS avg_value, MAX(value) AS max_value, MIN(value) AS min_value "
            "FROM production.orders_landing")
avg = con.execute("SELECT avg_value FROM production.orders_stats").fetchone()[0]
con.execute(f"CREATE OR REPLACE TABLE production.high_value_orders AS "
            f"SELECT * FROM production.orders_landing WHERE value > {avg!r}")
con.close()
"""


def main() -> None:
    header("start-up")
    typer_only, _ = time_process([sys.executable, "-c", "import typer"], repeat=9)
    helped, _ = time_process([*qarion_cmd(), "--help"], repeat=9)
    print(ratio_line("qarion-etl --help vs python -c 'import typer'", helped, typer_only, 1.3))
    work = Path(tempfile.mkdtemp(prefix="qarion-bench-startup-"))
    try:
        for name in ("flows", "data"):
            shutil.copytree(ROOT / name, work / name)
        shutil.copy(ROOT / "qarion-etl.toml", work / "qarion-etl.toml")
        raw, _ = time_process(
            [
                sys.executable,
                "-c",
                RAW_SEED,
                str(work / "raw.duckdb"),
                str(work / "data" / "orders.csv"),
            ],
            repeat=9,
        )
        ours, _ = time_process([*qarion_cmd(), "run", "data_pipeline", "-q"], repeat=9, cwd=work)
        print(ratio_line("run of the seed example (300 rows) vs raw DuckDB", ours, raw, 1.5))
        sqlalchemy_only, _ = time_process([sys.executable, "-c", "import sqlalchemy"], repeat=9)
        get = [*qarion_cmd(), "xcom", "get", "calculate_stats", "--key", "avg_value",
               "--flow", "data_pipeline"]  # fmt: skip
        got, _ = time_process(get, repeat=9, cwd=work)
        print(
            ratio_line(
                "qarion-etl xcom get vs python -c 'import sqlalchemy'", got, sqlalchemy_only, 0.6
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    validated, _ = time_process([*qarion_cmd(), "validate"], repeat=7, cwd=ROOT)
    print(ratio_line("qarion-etl validate (example) vs import typer", validated, typer_only))


if __name__ == "__main__":
    main()
