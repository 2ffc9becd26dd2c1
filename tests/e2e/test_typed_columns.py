"""A flow with string, decimal, date, timestamp, boolean and float columns, end to end on every
engine, and on a ``mariadb+pymysql://`` URL as both warehouse and metadata database.

SQLAlchemy names such a URL's dialect ``mariadb``; it once got DuckDB's column types
(``VARCHAR`` with no length), which MariaDB refuses with error 1064 at the CREATE TABLE.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.run.history import RunStore
from tests.conftest import ENGINES_AND_ALIASES, database_url, unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, query, table

CSV = """\
id,name,amount,day,seen_at,flag,score
1,it's 100%,12.3456789,2024-01-15,2024-01-15 10:30:05.123456,true,1.5
2,"b, with comma",0.0000001,2024-02-29,2024-02-29 23:59:59,false,-2.25
3,c,99999.99,2023-12-31,2023-12-31 00:00:00,yes,0
"""

FLOW = """\
id = "typed"
namespace = "{ns}"

[input]
primary_key = ["id"]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "name", schema_type = "string", required = true}},
  {{name = "amount", schema_type = "decimal"}},
  {{name = "day", schema_type = "date"}},
  {{name = "seen_at", schema_type = "timestamp"}},
  {{name = "flag", schema_type = "boolean"}},
  {{name = "score", schema_type = "float"}},
]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "landing"
[tasks.config]
path = "data/typed.csv"
format = "csv"

[[tasks]]
id = "summary"
type = "transformation"
source_dataset_id = "landing"
target_dataset_id = "summary"
[tasks.config]
sql = "SELECT COUNT(*) AS n, SUM(amount) AS total, MAX(day) AS last_day, MIN(name) AS first_name FROM {{{{ source_dataset }}}}"

[[tasks]]
id = "latest"
type = "transformation"
source_dataset_id = "landing"
target_dataset_id = "latest"
dependencies = ["summary"]
[tasks.config]
sql = "SELECT id, name, seen_at FROM {{{{ source_dataset }}}} WHERE day = {{{{ xcom_pull('summary', key='last_day') | sql_literal }}}}"
"""


@pytest.mark.parametrize("kind", ENGINES_AND_ALIASES)
def test_typed_columns_end_to_end(tmp_path: Path, kind: str) -> None:
    url = database_url(kind, tmp_path)
    server = kind.startswith("mariadb") or kind == "postgres"
    ns, meta_ns = unique_name("typed"), unique_name("meta")
    metadata_url = url if server else None
    project = make_project(
        tmp_path / "p", engine_url=url, metadata_url=metadata_url, namespace=meta_ns
    )
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "typed.csv").write_text(CSV)
    write_flow(project, "typed", FLOW.format(ns=ns))
    try:
        result = cli("run", "typed", "--json", project=project)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert [t["status"] for t in summary["tasks"]] == ["success"] * 3
        stats = summary["tasks"][1]["result"]
        assert stats["n"] == 3 and stats["first_name"] == "b, with comma"
        assert float(stats["total"]) == pytest.approx(100012.335679, rel=1e-12)
        assert stats["last_day"].startswith("2024-02-29")

        landing = table(url, ns, "landing")
        rows = query(
            url, f"SELECT id, name, amount, day, seen_at, flag, score FROM {landing} ORDER BY id"
        )
        assert [r[0] for r in rows] == [1, 2, 3]
        assert rows[0][1] == "it's 100%"
        assert Decimal(str(rows[0][2])) == Decimal("12.3456789")
        assert str(rows[1][3]) == "2024-02-29"
        assert str(rows[0][4]).replace("T", " ") == "2024-01-15 10:30:05.123456"
        assert [
            bool(r[5]) if not isinstance(r[5], str) else r[5] in ("1", "true") for r in rows
        ] == [
            True,
            False,
            True,
        ]
        assert [float(r[6]) for r in rows] == [1.5, -2.25, 0.0]
        latest = table(url, ns, "latest")
        assert [r[0] for r in query(url, f"SELECT id FROM {latest}")] == [2]

        pulled = cli("xcom", "get", "summary", "--key", "n", "--flow", "typed", project=project)
        assert pulled.exit_code == 0 and pulled.stdout.strip() == "3"
        runs = cli("runs", "list", "--json", project=project)
        assert json.loads(runs.stdout)[0]["status"] == "success"
    finally:
        drop_namespace(url, ns)
        if server:
            db = DatabaseService(url)
            RunStore(db, meta_ns).drop_tables()
            with db.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {db.quote(meta_ns + '_xcom')}")
            db.close()
