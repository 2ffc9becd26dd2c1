"""SQL safety: a hostile STRING XCom through ``| sql_literal`` stays a literal; identifiers are quoted."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, query, table, table_names


def test_hostile_string_xcom_through_sql_literal_is_a_literal(
    tmp_path: Path, engine_url: str
) -> None:
    ns = unique_name("inj")
    project = make_project(tmp_path, engine_url=engine_url, example=False)
    victim = table(engine_url, ns, "victim")
    values = {
        "plain": f"1; DROP TABLE {victim}",
        "quote": f"1'; DROP TABLE {victim}; --",
        "backslash": f"1\\'; DROP TABLE {victim}; --",
        "comment": f"1 */ ; DROP TABLE {victim} /*",
    }
    for key, value in values.items():
        pushed = cli(
            "xcom",
            "push",
            "producer",
            value,
            "--key",
            key,
            "--type",
            "string",
            "--flow",
            "src",
            project=project,
        )
        assert pushed.exit_code == 0, pushed.stderr
    selects = " UNION ALL ".join(
        f"SELECT '{k}' AS k, {{{{ xcom_pull('producer', key='{k}', flow_id='src') | sql_literal }}}} AS label"
        for k in values
    )
    write_flow(
        project,
        "inj",
        f'''
id = "inj"
namespace = "{ns}"

[[tasks]]
id = "make_victim"
type = "transformation"
target_dataset_id = "victim"
[tasks.config]
sql = "SELECT 1 AS a"

[[tasks]]
id = "use_value"
type = "transformation"
target_dataset_id = "labels"
dependencies = ["make_victim"]
[tasks.config]
sql = """{selects}"""
''',
    )
    try:
        result = cli("run", "inj", project=project)
        assert result.exit_code == 0, result.stderr
        assert "victim" in table_names(engine_url, ns)  # still there
        assert query(engine_url, f"SELECT a FROM {victim}") == [(1,)]
        rows = dict(query(engine_url, f"SELECT k, label FROM {table(engine_url, ns, 'labels')}"))
        assert rows == values  # each value arrived as the text it was
        rendered = cli("render", "inj", "use_value", project=project)
        assert rendered.exit_code == 0 and f"'1; DROP TABLE {victim}'" in rendered.stdout
    finally:
        drop_namespace(engine_url, ns)
        cli("xcom", "clear", "--flow", "src", "--yes", project=project)


def test_identifiers_from_flow_files_are_quoted(tmp_path: Path, engine_url: str) -> None:
    """Dataset ids and columns that are reserved words, mixed case or hyphenated work on every engine."""
    ns = unique_name("QuotedNS")
    project = make_project(tmp_path, engine_url=engine_url, example=False)
    (project / "data").mkdir()
    (project / "data" / "in.csv").write_text("select,Order-Id\n1,2\n3,4\n")
    write_flow(
        project,
        "q",
        f'''
id = "q"
namespace = "{ns}"

[input]
columns = [{{name = "select", schema_type = "integer"}}, {{name = "Order-Id", schema_type = "integer"}}]

[[tasks]]
id = "ingest"
type = "ingestion"
target_dataset_id = "table"
[tasks.config]
path = "data/in.csv"
format = "csv"

[[tasks]]
id = "sum-up"
type = "transformation"
source_dataset_id = "table"
target_dataset_id = "Select"
dependencies = ["ingest"]
[tasks.config]
sql = "SELECT SUM({{{{ 'select' | sql_identifier }}}}) AS total FROM {{{{ source_dataset }}}}"
''',
    )
    try:
        result = cli("run", "q", project=project)
        assert result.exit_code == 0, result.stderr
        assert set(table_names(engine_url, ns)) == {"table", "Select"}
        assert query(engine_url, f"SELECT total FROM {table(engine_url, ns, 'Select')}") == [(4,)]
    finally:
        drop_namespace(engine_url, ns)
