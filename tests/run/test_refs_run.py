"""``ref()``, ephemeral tasks and macros in runs, on every engine; flows ordered by their refs.

A seed flow loads orders; a mart flow in another namespace reads them through a one-argument
(project-wide) ``ref``, through two ephemeral tasks (one reading the other), written with
``AS alias``, a bare alias and no alias, inside the user's own ``WITH``, and through a macro.
``run --all`` on a fresh warehouse runs the seed first although its file sorts last.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qarion_etl.db_service import DatabaseService
from tests.conftest import DATABASES, database_url, unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, query, table

CSV = "id,customer,amount\n1,ann,10\n2,bob,25\n3,ann,40\n4,cid,5\n"

SEED = """
id = "zz_seed"
namespace = "{ns}"
[input]
columns = [
  {{name = "id", schema_type = "integer"}},
  {{name = "customer", schema_type = "string"}},
  {{name = "amount", schema_type = "integer"}},
]
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""

MART = """
id = "aa_mart"
namespace = "{ns}"

[[tasks]]
id = "stg"
type = "transformation"
target_dataset_id = "stg_orders"
materialized = "ephemeral"
[tasks.config]
sql = "SELECT id, customer, {{{{ cents('amount') }}}} AS cents FROM {{{{ ref('orders') }}}}"

[[tasks]]
id = "big"
type = "transformation"
target_dataset_id = "big_orders"
materialized = "ephemeral"
[tasks.config]
sql = "SELECT * FROM {{{{ ref('stg_orders') }}}} AS s WHERE s.cents >= 1000"

[[tasks]]
id = "by_customer"
type = "transformation"
target_dataset_id = "by_customer"
[tasks.config]
sql = '''
WITH agg AS (
  SELECT b.customer, COUNT(*) AS n, SUM(b.cents) AS cents
  FROM {{{{ ref('big_orders') }}}} b
  GROUP BY b.customer
)
SELECT agg.customer, agg.n, agg.cents, t.total
FROM agg
JOIN (SELECT customer, SUM(cents) AS total FROM {{{{ ref('stg_orders') }}}} GROUP BY customer) t
  ON t.customer = agg.customer
'''

[[tasks]]
id = "summary"
type = "transformation"
target_dataset_id = "summary"
[tasks.config]
sql = '''
SELECT (SELECT COUNT(*) FROM {{{{ ref('by_customer') }}}}) AS customers,
       {{{{ count_of('zz_seed', 'orders') }}}} AS orders
'''
"""

MACROS = """\
{% macro cents(col) %}({{ col }} * 100){% endmacro %}
{% macro count_of(flow, name) %}(SELECT COUNT(*) FROM {{ ref(flow, name) }}){% endmacro %}
"""


def _project(tmp_path: Path, url: str) -> tuple[Path, str, str]:
    seed_ns, mart_ns = unique_name("seed"), unique_name("mart")
    project = make_project(tmp_path / "p", engine_url=url, example=False)
    (project / "data").mkdir()
    (project / "data" / "orders.csv").write_text(CSV)
    (project / "macros").mkdir()
    (project / "macros" / "money.sql").write_text(MACROS)
    write_flow(project, "zz_seed", SEED.format(ns=seed_ns))
    write_flow(project, "aa_mart", MART.format(ns=mart_ns))
    return project, seed_ns, mart_ns


def _has_table(url: str, namespace: str, name: str) -> bool:
    with DatabaseService(url) as db, db.connect() as conn:
        dialect = db.dialect
        return db.has_table(conn, dialect.physical(namespace, name), dialect.schema(namespace))


@pytest.mark.parametrize("kind", DATABASES)
def test_refs_ephemerals_and_macros_on_every_engine(tmp_path: Path, kind: str) -> None:
    url = database_url(kind, tmp_path)
    project, seed_ns, mart_ns = _project(tmp_path, url)
    try:
        done = cli("run", "--all", "--json", project=project)
        assert done.exit_code == 0, done.output
        flows = {f["flow_id"]: f for f in json.loads(done.stdout)["flows"]}
        # The seed ran first: the mart's first task started after the seed's run ended.
        assert flows["aa_mart"]["tasks"][0]["started_at"] >= flows["zz_seed"]["ended_at"]
        rows = query(
            url,
            f"SELECT customer, n, cents, total FROM {table(url, mart_ns, 'by_customer')} "
            "ORDER BY customer",
        )
        assert [tuple(int(v) if i else v for i, v in enumerate(r)) for r in rows] == [
            ("ann", 2, 5000, 5000),
            ("bob", 1, 2500, 2500),
        ]
        summary = query(url, f"SELECT customers, orders FROM {table(url, mart_ns, 'summary')}")
        assert [tuple(map(int, r)) for r in summary] == [(2, 4)]
        # Ephemeral tasks write no table and say so in their result.
        tasks = {t["task_id"]: t for t in flows["aa_mart"]["tasks"]}
        assert tasks["stg"]["status"] == "success"
        assert tasks["stg"]["result"]["materialized"] == "ephemeral"
        assert "rows_written" not in tasks["stg"]["result"]
        assert not _has_table(url, mart_ns, "stg_orders")
        assert not _has_table(url, mart_ns, "big_orders")
    finally:
        drop_namespace(url, seed_ns)
        drop_namespace(url, mart_ns)


def test_a_flow_reading_a_table_not_written_yet_names_the_upstream_flow(tmp_path: Path) -> None:
    project, _, _ = _project(tmp_path, f"duckdb:///{tmp_path / 'w.duckdb'}")
    done = cli("run", "aa_mart", "--json", project=project)
    assert done.exit_code == 1
    assert "flow 'aa_mart' reads tables of other flows that do not exist yet: " in done.output
    assert "(flow 'zz_seed', task 'load'); nothing of this run was started" in done.output
    assert "run zz_seed first (qarion-etl run zz_seed)" in done.output
    assert "Traceback" not in done.output
    # Checked before the run: no task of it started, no run was recorded.
    doc = json.loads(done.stdout)
    assert doc["status"] == "error" and not doc.get("tasks"), doc
    assert "aa_mart" not in cli("runs", "list", project=project).stdout


@pytest.mark.parametrize("kind", DATABASES)
def test_a_view_of_another_flow_is_read_through_ref(tmp_path: Path, kind: str) -> None:
    """A ref to another flow's view: it exists for the check before the run, on every engine."""
    url = database_url(kind, tmp_path)
    seed_ns, mart_ns = unique_name("vseed"), unique_name("vmart")
    project = make_project(tmp_path / "p", engine_url=url, example=False)
    (project / "data").mkdir()
    (project / "data" / "orders.csv").write_text(CSV)
    write_flow(project, "zz_seed", SEED.format(ns=seed_ns) + VIEW_TASK)
    write_flow(project, "aa_mart", VIEW_MART.format(ns=mart_ns))
    try:
        done = cli("run", "--all", project=project)
        assert done.exit_code == 0, done.output
        again = cli("run", "aa_mart", project=project)  # the view is there: no refusal
        assert again.exit_code == 0, again.output
        rows = query(url, f"SELECT n FROM {table(url, mart_ns, 'counted')}")
        assert [int(r[0]) for r in rows] == [3]
    finally:
        drop_namespace(url, mart_ns)
        drop_namespace(url, seed_ns)


VIEW_TASK = """
[[tasks]]
id = "big_view"
type = "transformation"
target_dataset_id = "big_orders_v"
materialized = "view"
[tasks.config]
sql = "SELECT * FROM {{ ref('orders') }} WHERE amount >= 10"
"""

VIEW_MART = """
id = "aa_mart"
namespace = "{ns}"
[[tasks]]
id = "counted"
type = "transformation"
target_dataset_id = "counted"
[tasks.config]
sql = "SELECT COUNT(*) AS n FROM {{{{ ref('zz_seed', 'big_orders_v') }}}}"
"""


def test_an_unknown_ref_stops_the_run_before_anything_runs(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    project, seed_ns, _ = _project(tmp_path, url)
    assert cli("run", "zz_seed", project=project).exit_code == 0
    path = project / "flows" / "aa_mart.toml"
    text = path.read_text().replace("ref('big_orders')", "ref('big_ordrs')")
    path.write_text(text)
    line = text.splitlines().index("  FROM {{ ref('big_ordrs') }} b") + 1
    done = cli("run", "aa_mart", project=project)
    assert done.exit_code == 2, done.output
    assert done.output.strip().endswith(
        f"flows/aa_mart.toml:{line}: task 'by_customer': ref('big_ordrs'): no task writes "
        "dataset 'big_ordrs' (did you mean 'big_orders'?)"
    )
    assert "Traceback" not in done.output
    # Nothing of the mart ran: no run of it was recorded.
    runs = cli("runs", "list", project=project).output
    assert "zz_seed" in runs and "aa_mart" not in runs


def test_when_the_upstream_flow_fails_the_downstream_flow_does_not_run(tmp_path: Path) -> None:
    project, _, _ = _project(tmp_path, f"duckdb:///{tmp_path / 'w.duckdb'}")
    (project / "data" / "orders.csv").write_text("id,customer,amount\nx,ann,1\n")
    done = cli("run", "--all", "--json", project=project)
    assert done.exit_code == 1
    doc = json.loads(done.stdout)
    assert [f["flow_id"] for f in doc["flows"]] == ["zz_seed"]
    assert "reads datasets of flow" in json.dumps(doc["errors"])


def test_select_with_plus_crosses_into_the_upstream_flow(tmp_path: Path) -> None:
    project, _, _ = _project(tmp_path, f"duckdb:///{tmp_path / 'w.duckdb'}")
    done = cli("run", "--all", "--select", "+big", "--json", project=project)
    assert done.exit_code == 0, done.output
    ran = {
        f["flow_id"]: [t["task_id"] for t in f["tasks"]] for f in json.loads(done.stdout)["flows"]
    }
    assert ran == {"zz_seed": ["load"], "aa_mart": ["stg", "big"]}
    # Downstream the other way: the seed's load and everything that reads it.
    done = cli(
        "run", "--all", "--select", "load+", "--exclude", "summary", "--json", project=project
    )
    assert done.exit_code == 0, done.output
    ran = {
        f["flow_id"]: [t["task_id"] for t in f["tasks"]] for f in json.loads(done.stdout)["flows"]
    }
    assert ran == {"zz_seed": ["load"], "aa_mart": ["stg", "big", "by_customer"]}


def test_the_report_shows_what_each_task_reads_through_ref(tmp_path: Path) -> None:
    project, _, _ = _project(tmp_path, f"duckdb:///{tmp_path / 'w.duckdb'}")
    ran = cli("run", "--all", project=project)
    assert ran.exit_code == 0
    assert "(ephemeral: no table, inlined where ref'd)" in ran.output
    out = tmp_path / "report.html"
    done = cli("report", "latest", "--flow", "aa_mart", "-o", str(out), project=project)
    assert done.exit_code == 0, done.output
    html = out.read_text()
    assert '<th>reads</th><td class="id">zz_seed.orders</td>' in html
    assert '<th>reads</th><td class="id">big_orders, stg_orders</td>' in html


def test_run_a_b_runs_the_upstream_flow_first_whatever_the_order_given(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    project, _, mart_ns = _project(tmp_path, url)
    done = cli("run", "aa_mart", "zz_seed", "--max-workers", "1", project=project)
    assert done.exit_code == 0, done.output
    assert done.output.index("Running zz_seed") < done.output.index("Running aa_mart")
    assert query(url, f"SELECT customers FROM {table(url, mart_ns, 'summary')}") == [(2,)]
