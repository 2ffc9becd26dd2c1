"""What ``validate`` knows of ``ref()``, ``materialized`` and macros without rendering.

Every error names file, line and task and exits 2; refs add task edges inside a flow and
flow edges across flows; cycles across flows are refused with the flows and datasets.
"""

from __future__ import annotations

from pathlib import Path

from qarion_etl.definitions.templates import RefCall, find_refs, parse_template
from qarion_etl.project import Project
from tests.helpers import cli, make_project, write_flow

LOAD = """
id = "{id}"
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "{dataset}"
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""

MART = """
id = "mart"
[[tasks]]
id = "stg"
type = "transformation"
target_dataset_id = "stg"
[tasks.config]
sql = "SELECT * FROM {{{{ ref('orders') }}}}"

[[tasks]]
id = "final"
type = "transformation"
target_dataset_id = "final"
[tasks.config]
sql = '''
SELECT s.*, {{{{ xcom_pull('stg', key='rows_written') }}}} AS n
FROM {{{{ ref({final_ref}) }}}} s
'''
"""


def _project(tmp_path: Path, final_ref: str = "'stg'", **flows: str) -> Path:
    project = make_project(tmp_path, example=False)
    write_flow(project, "seed", LOAD.format(id="seed", dataset="orders"))
    write_flow(project, "mart", MART.format(final_ref=final_ref))
    for name, text in flows.items():
        write_flow(project, name, text)
    return project


def _line(project: Path, flow: str, text: str) -> int:
    lines = (project / "flows" / f"{flow}.toml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_find_refs_reads_both_forms_and_flags_the_rest() -> None:
    tree = parse_template("{{ ref('a') }}\n{{ ref('f', 'b') }}\n{{ ref(name) }}")
    assert list(find_refs(tree)) == [
        RefCall(None, "a", 1),
        RefCall("f", "b", 2),
        RefCall(None, None, 3),
    ]


def test_a_ref_in_the_same_flow_is_an_edge_without_dependencies(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with Project.load(project / "qarion-etl.toml") as p:
        _, graph = p.validate("mart")
        # final pulls from stg without listing it: the ref made stg upstream
        assert graph.has_edge("stg", "final")
        assert graph.to_networkx().edges["stg", "final"]["reason"] == "ref"
        assert p.models().flow_edges() == {("seed", "mart"): ["orders"]}
    assert cli("validate", "mart", project=project).exit_code == 0


def test_an_unknown_ref_is_refused_with_line_task_and_suggestion(tmp_path: Path) -> None:
    project = _project(tmp_path, final_ref="'stgg'")
    done = cli("validate", "mart", project=project)
    assert done.exit_code == 2
    line = _line(project, "mart", "ref('stgg')")
    assert (
        f"flows/mart.toml:{line}: task 'final': ref('stgg'): no task writes dataset 'stgg' "
        "(did you mean 'stg'?)"
    ) in done.output
    assert "Traceback" not in done.output


def test_a_ref_to_the_own_target_an_unknown_flow_or_a_non_constant(tmp_path: Path) -> None:
    for final_ref, expected in [
        ("'final'", "ref('final') is this task's own target: use {{ target_dataset }}"),
        ("'sede', 'orders'", "ref('sede', 'orders'): no flow 'sede' (did you mean 'seed'?)"),
        ("'seed', 'order'", "flow 'seed' writes no dataset 'order' (did you mean 'orders'?)"),
        ("var('x')", "ref() takes one or two quoted names"),
    ]:
        project = _project(tmp_path / final_ref.replace("'", "").replace(" ", ""), final_ref)
        done = cli("validate", "mart", project=project)
        assert done.exit_code == 2, final_ref
        assert "task 'final': " in done.output and expected in done.output, done.output


def test_a_dataset_written_in_two_flows_needs_the_flow_named(tmp_path: Path) -> None:
    project = _project(tmp_path, other=LOAD.format(id="other", dataset="orders"))
    done = cli("validate", "mart", project=project)
    assert done.exit_code == 2
    assert (
        "ref('orders'): dataset 'orders' is written in several flows (other, seed): "
        "name one, as ref('other', 'orders')"
    ) in done.output
    text = (project / "flows" / "mart.toml").read_text()
    (project / "flows" / "mart.toml").write_text(
        text.replace("ref('orders')", "ref('seed', 'orders')")
    )
    assert cli("validate", "mart", project=project).exit_code == 0


def test_flows_that_read_each_other_are_a_cycle(tmp_path: Path) -> None:
    back = LOAD.format(id="seed", dataset="orders").replace(
        'type = "ingestion"', 'type = "transformation"'
    )
    back = back.replace(
        'path = "data/orders.csv"\nformat = "csv"', "sql = \"SELECT * FROM {{ ref('final') }}\""
    )
    project = _project(tmp_path)
    write_flow(project, "seed", back)
    done = cli("validate", project=project)
    assert done.exit_code == 2
    assert (
        "flows read each other's datasets in a cycle: mart -> seed (reads final); "
        "seed -> mart (reads orders)"
    ) in done.output


def test_materialized_is_checked(tmp_path: Path) -> None:
    project = _project(tmp_path)
    text = (project / "flows" / "mart.toml").read_text()
    bad = text.replace(
        'target_dataset_id = "stg"\n', 'target_dataset_id = "stg"\nmaterialized = "ephemral"\n'
    )
    write_flow(project, "mart", bad)
    done = cli("validate", "mart", project=project)
    line = _line(project, "mart", "ephemral")
    assert done.exit_code == 2
    assert (
        f"flows/mart.toml:{line}: task 'stg': 'materialized' must be one of 'table', 'view', "
        "'ephemeral', 'incremental', got 'ephemral' (did you mean 'ephemeral'?)"
    ) in done.output
    seed = (project / "flows" / "seed.toml").read_text()
    write_flow(
        project,
        "seed",
        seed.replace('type = "ingestion"', 'type = "ingestion"\nmaterialized = "view"'),
    )
    done = cli("validate", "seed", project=project)
    assert done.exit_code == 2
    assert "task 'load': only a transformation task has 'materialized'" in done.output


def test_an_ephemeral_task_needs_a_target(tmp_path: Path) -> None:
    eph = """
    id = "eph"
    [[tasks]]
    id = "e"
    type = "transformation"
    materialized = "ephemeral"
    [tasks.config]
    sql = "SELECT 1 AS one"
    """
    project = _project(tmp_path, eph=eph)
    done = cli("validate", "eph", project=project)
    assert done.exit_code == 2
    assert "task 'e': an ephemeral task needs 'target_dataset_id'" in done.output


def test_macros_are_known_names_and_their_syntax_errors_name_file_and_line(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    (project / "macros").mkdir()
    (project / "macros" / "util.sql").write_text(
        "{% macro cents(col) %}({{ col }} * 100){% endmacro %}\n"
    )
    text = (project / "flows" / "mart.toml").read_text()
    write_flow(project, "mart", text.replace("SELECT * FROM", "SELECT {{ cents('x') }} AS c FROM"))
    assert cli("validate", "mart", project=project).exit_code == 0
    # a name that is neither a macro nor in the context is still refused
    write_flow(project, "mart", text.replace("SELECT * FROM", "SELECT {{ cent('x') }} AS c FROM"))
    done = cli("validate", "mart", project=project)
    assert done.exit_code == 2
    assert "undefined name 'cent' (did you mean 'cents'?)" in done.output
    (project / "macros" / "broken.sql").write_text(
        "{% macro ok() %}1{% endmacro %}\n\n{% macro bad( %}x{% endmacro %}\n"
    )
    done = cli("validate", project=project)
    assert done.exit_code == 2
    assert "macros/broken.sql:3: macro file syntax error" in done.output
    (project / "macros" / "broken.sql").write_text("{% macro cents() %}1{% endmacro %}\n")
    done = cli("validate", "mart", project=project)
    assert done.exit_code == 2
    assert "macros/util.sql:1: macro 'cents' is also defined in" in done.output


def test_a_ref_into_a_flow_that_does_not_load_says_so(tmp_path: Path) -> None:
    project = _project(tmp_path)
    seed = (project / "flows" / "seed.toml").read_text()
    write_flow(project, "seed", seed.replace('type = "ingestion"', 'type = "ingestoin"'))
    done = cli("validate", "mart", project=project)
    assert done.exit_code == 2
    assert "ref('orders'): no task writes dataset 'orders' (flows that do not load: seed)" in (
        done.output
    )
    text = (project / "flows" / "mart.toml").read_text()
    write_flow(project, "mart", text.replace("ref('orders')", "ref('seed', 'orders')"))
    done = cli("validate", "mart", project=project)
    assert "ref('seed', 'orders'): flow 'seed' does not load: validate it first" in done.output


MACRO_MART = """
id = "mart"
[[tasks]]
id = "stg"
type = "transformation"
target_dataset_id = "stg"
[tasks.config]
sql = "SELECT * FROM {{ raw_orders() }}"

[[tasks]]
id = "final"
type = "transformation"
target_dataset_id = "final"
[tasks.config]
sql = "SELECT * FROM {{ staged() }}"
"""


def test_refs_inside_the_macros_a_task_calls_are_edges(tmp_path: Path) -> None:
    """A constant ref() in a macro (or in a macro it calls) orders tasks and flows like one
    written in the task's SQL; one built from the macro's arguments adds nothing."""
    project = make_project(tmp_path, example=False)
    write_flow(project, "seed", LOAD.format(id="seed", dataset="orders"))
    write_flow(project, "mart", MACRO_MART)
    (project / "macros").mkdir()
    (project / "macros" / "tables.sql").write_text(
        "{% macro raw_orders() %}{{ ref('seed', 'orders') }}{% endmacro %}\n"
        "{% macro stg_table() %}{{ ref('stg') }}{% endmacro %}\n"
        "{% macro staged() %}{{ stg_table() }}{% endmacro %}\n"
        "{% macro any_table(f, d) %}{{ ref(f, d) }}{% endmacro %}\n"
    )
    with Project.load(project / "qarion-etl.toml") as p:
        _, graph = p.validate("mart")
        assert graph.has_edge("stg", "final")  # through staged() -> stg_table()
        assert p.models().flow_edges() == {("seed", "mart"): ["orders"]}
    assert cli("validate", "mart", project=project).exit_code == 0


def test_a_cycle_closed_by_refs_inside_macros_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    write_flow(
        project,
        "loop",
        """
id = "loop"
[[tasks]]
id = "a"
type = "transformation"
target_dataset_id = "a"
[tasks.config]
sql = "SELECT * FROM {{ b_table() }}"

[[tasks]]
id = "b"
type = "transformation"
target_dataset_id = "b"
[tasks.config]
sql = "SELECT * FROM {{ ref('a') }}"
""",
    )
    (project / "macros").mkdir()
    (project / "macros" / "m.sql").write_text("{% macro b_table() %}{{ ref('b') }}{% endmacro %}\n")
    done = cli("validate", "loop", project=project)
    assert done.exit_code == 2, done.output
    assert "in a cycle, through refs inside macros" in done.output
    assert "Traceback" not in done.output
