"""The seed pipeline on Spark: ``qarion-etl run`` beside a raw PySpark Connect script.

One Spark Connect server (``local[2]``, on a free 127.0.0.1 port) serves both, in the same
window: a warm-up run first (the server's first queries pay for the JVM's warm-up), then
the two alternate, best of three each. The raw script runs the statements our run runs
(the CSV read as a view, the typed check, the landing CTAS, the key check, the stats and
filter CTAS, the swaps) with the plain client and nothing else. ``BENCH_ROWS`` (default
1000000) sets the size; needs Java and the full ``pyspark`` of the dev extras.
"""

from __future__ import annotations

import os
import sys
import time

from benchmarks.bench_pipeline import SEED_FLOW, engine_seconds, orders_csv, project, run_child
from benchmarks.common import DATA, header, qarion_cmd, ratio_line

RAW_SPARK = r"""
import sys, time, uuid, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).create()
path, ns = sys.argv[2], "bench_raw"
def run(sql):
    return spark.sql(sql)
run(f"CREATE SCHEMA IF NOT EXISTS {ns}")
tables = {r[1] for r in run(f"SHOW TABLES IN {ns}").collect()}
num = r"'^ *[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)? *$'"
run("CREATE TEMPORARY VIEW src (id STRING, value STRING, _bad STRING) USING csv OPTIONS "
    f"(path '{path}', header 'true', escape '\"', multiLine 'true', mode 'PERMISSIVE', "
    "columnNameOfCorruptRecord '_bad')")
id_ = "CASE WHEN id RLIKE '^ *[+-]?[0-9]+ *$' THEN try_cast(trim(id) AS BIGINT) END"
value = f"CASE WHEN value RLIKE {num} THEN try_cast(trim(value) AS DOUBLE) END"
checked = run(f"SELECT count(*), count_if(_bad IS NOT NULL OR id IS NULL OR value IS NULL OR "
              f"{id_} IS NULL OR {value} IS NULL) FROM src").collect()[0]
assert checked[1] == 0
stage = lambda t: f"{ns}._tmp_{t}_{uuid.uuid4().hex[:8]}"
def swap(table, staged):
    if table in tables:
        run(f"ALTER TABLE {ns}.{table} RENAME TO {ns}.{table}_old")
    run(f"ALTER TABLE {staged} RENAME TO {table}")
    if table in tables:
        run(f"DROP TABLE {ns}.{table}_old")
landing = stage("orders_landing")
run(f"CREATE TABLE {landing} AS SELECT {id_} AS id, {value} AS value, CAST(1 AS BIGINT) AS batch_id FROM src")
run(f"SELECT 1 FROM {landing} WHERE id IS NULL OR value IS NULL LIMIT 1").collect()
run(f"SELECT id FROM {landing} GROUP BY id HAVING COUNT(*) > 1 LIMIT 1").collect()
swap("orders_landing", landing)
stats = stage("orders_stats")
run(f"CREATE TABLE {stats} AS SELECT COUNT(*) AS total_count, AVG(value) AS avg_value, "
    f"MAX(value) AS max_value, MIN(value) AS min_value FROM {ns}.orders_landing")
avg = run(f"SELECT * FROM {stats} LIMIT 2").collect()[0][1]
swap("orders_stats", stats)
high = stage("high_value_orders")
run(f"CREATE TABLE {high} AS SELECT * FROM {ns}.orders_landing WHERE value > {avg!r}")
run(f"SELECT * FROM {high} LIMIT 2").collect()
run(f"SELECT COUNT(*) FROM {high}").collect()
swap("high_value_orders", high)
spark.stop()
print(time.perf_counter() - t0)
"""


def main() -> None:
    from tests.spark.server import java_missing, start_connect

    header("Spark (Spark Connect, local[2]): the seed pipeline")
    why = java_missing()
    if why is not None:
        print(f"spark: skipped, {why}")
        return
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    csv_path = orders_csv(rows)
    server = start_connect(DATA / "spark")
    try:
        flow = SEED_FLOW.replace('path = "data/orders.csv"', f'path = "{csv_path}"').replace(
            'namespace = "production"', 'namespace = "bench_ours"'
        )
        proj = project("proj_spark", server.url, csv_path, flow)
        ours_cmd = [*qarion_cmd(), "run", "data_pipeline", "--json"]
        raw_cmd = [sys.executable, "-c", RAW_SPARK, server.url, str(csv_path)]
        started = time.perf_counter()
        run_child(ours_cmd, cwd=proj)  # warm-up of the server's JVM, for both
        run_child(raw_cmd)
        ours_runs, raw_runs = [], []
        for _ in range(3):
            ours_runs.append(run_child(ours_cmd, cwd=proj))
            raw_runs.append(run_child(raw_cmd))
        ours = min(ours_runs, key=lambda r: r[0])
        raw = min(raw_runs, key=lambda r: r[0])
        print(ratio_line(f"spark {rows:,} rows: whole process", ours[0], raw[0], target=1.3))
        print(
            ratio_line(
                f"spark {rows:,} rows: engine work",
                engine_seconds(ours[2]),
                float(raw[2].strip().splitlines()[-1]),
            )
        )
        print(f"spark: {len(ours_runs) + 1} runs each in {time.perf_counter() - started:.0f}s")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
