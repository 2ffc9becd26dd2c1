"""``[[tasks.checks]]``: the parsed ``CheckSpec``s, and every wrong key, type and value as a
problem naming the file, the line, the task and a suggestion."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.definitions.checks import ALL_KEYS, CheckSpec, CompareTo, parse_ref
from qarion_etl.definitions.flow_parser import load_flow
from qarion_etl.definitions.refs import ModelIndex
from qarion_etl.definitions.validation import validate_flow
from qarion_etl.errors import FlowValidationError

HEAD = """\
id = "shop"
[input]
primary_key = ["id"]
columns = [{name = "id", schema_type = "integer"}, {name = "status"}, {name = "cust"}]

[[tasks]]
id = "customers"
type = "transformation"
target_dataset_id = "customers"
[tasks.config]
sql = "SELECT 1 AS id"

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
dependencies = ["customers"]
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""


def _flow(tmp_path: Path, checks: str, head: str = HEAD, name: str = "shop") -> Path:
    path = tmp_path / "flows" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + textwrap.dedent(checks))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(FlowValidationError) as exc:
        validate_flow(load_flow(path))
    assert exc.value.exit_code == 2
    return [p.format(exc.value.path) for p in exc.value.problems]


def test_every_check_type_parses(tmp_path: Path) -> None:
    path = _flow(
        tmp_path,
        """
        [[tasks.checks]]
        type = "not_null"
        column = "id"
        [[tasks.checks]]
        type = "unique"
        column = ["id", "status"]
        severity = "warn"
        [[tasks.checks]]
        type = "accepted_values"
        column = "status"
        values = ["open", "closed"]
        [[tasks.checks]]
        type = "relationships"
        column = "cust"
        to = "ref('customers')"
        field = "id"
        [[tasks.checks]]
        type = "row_count"
        min = 1
        max = 10
        [[tasks.checks]]
        name = "about_as_many"
        type = "row_count"
        compare_to = {task = "load", key = "rows_loaded", run = "previous"}
        within_percent = 20
        [[tasks.checks]]
        type = "expression"
        sql = "SELECT * FROM {{ target_dataset }} WHERE id < 0"
        [[tasks.checks]]
        type = "not_null"
        column = "id"
        """,
    )
    flow = load_flow(path)
    validate_flow(flow)
    checks = flow.task("load").checks
    assert [c.name for c in checks] == [
        "not_null_id",
        "unique_id_status",
        "accepted_values_status",
        "relationships_cust",
        "row_count",
        "about_as_many",
        "expression",
        "not_null_id_2",
    ]
    assert checks[0] == CheckSpec("not_null", "not_null_id", columns=("id",), line=22)
    assert checks[1].severity == "warn" and checks[1].column == "id, status"
    assert checks[2].values == ("open", "closed")
    assert (checks[3].to_flow, checks[3].to_dataset, checks[3].field) == (None, "customers", "id")
    assert (checks[4].min, checks[4].max) == (1, 10)
    assert checks[5].compare_to == CompareTo("load", "rows_loaded", "previous")
    assert checks[5].within_percent == 20.0
    assert flow.task("customers").checks == ()


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            'type = "not_nul"\ncolumn = "id"',
            "shop.toml:23: task 'load': check #1: unknown type 'not_nul' (did you mean 'not_null'?)",
        ),
        (
            'type = "not_null"\ncolumn = "idd"',
            "shop.toml:24: task 'load': check #1: unknown column 'idd' (did you mean 'id'?)",
        ),
        (
            'type = "not_null"\ncolumn = "id"\nseverity = "warning"',
            "shop.toml:25: task 'load': check #1: 'severity' must be \"error\" or \"warn\", "
            "got 'warning' (did you mean 'warn'?)",
        ),
        (
            'type = "unique"\ncolum = "id"',
            "shop.toml:24: task 'load': check #1: unknown key 'colum' in a unique check "
            "(did you mean 'column'?)",
        ),
        (
            'type = "not_null"\ncolumn = "id"\nvalues = [1]',
            "shop.toml:25: task 'load': check #1: unknown key 'values' in a not_null check",
        ),
        (
            'type = "accepted_values"\ncolumn = "status"\nvalues = []',
            "shop.toml:25: task 'load': check #1: 'values' must be a non-empty list",
        ),
        (
            'type = "relationships"\ncolumn = "cust"\nto = "customers"',
            "shop.toml:25: task 'load': check #1: 'to' must be \"ref('dataset')\"",
        ),
        (
            'type = "relationships"\ncolumn = "cust"\nto = "ref(\'custmers\')"',
            "shop.toml:25: task 'load': check 'relationships_cust': 'to': no task writes dataset "
            "'custmers' (did you mean 'customers'?)",
        ),
        (
            'type = "relationships"\ncolumn = "cust"\nto = "ref(\'shp\', \'customers\')"',
            "shop.toml:25: task 'load': check 'relationships_cust': 'to': no flow 'shp' (did you "
            "mean 'shop'?)",
        ),
        (
            'type = "row_count"\nmin = -1',
            "shop.toml:24: task 'load': check #1: 'min' must be a whole number, 0 or more",
        ),
        (
            'type = "row_count"',
            "shop.toml:22: task 'load': check #1: a row_count check needs 'min', 'max', or "
            "'compare_to'",
        ),
        (
            'type = "row_count"\ncompare_to = {task = "lod", key = "rows_loaded"}\n'
            "within_percent = 20",
            "shop.toml:22: task 'load': check 'row_count': compare_to names unknown task 'lod' "
            "(did you mean 'load'?)",
        ),
        (
            'type = "row_count"\ncompare_to = {task = "load", key = "rows_loaded", run = "last"}'
            "\nwithin_percent = 20",
            "shop.toml:24: task 'load': check #1: 'compare_to' run must be \"previous\" or "
            "\"current\", got 'last'",
        ),
        (
            'type = "row_count"\ncompare_to = {task = "load", key = "rows_loaded"}',
            "shop.toml:22: task 'load': check #1: 'compare_to' needs 'within_percent'",
        ),
        (
            'type = "expression"',
            "shop.toml:22: task 'load': check #1: an expression check needs 'sql'",
        ),
        (
            'name = "a"\ntype = "not_null"\ncolumn = "id"\n[[tasks.checks]]\nname = "a"\n'
            'type = "not_null"\ncolumn = "id"',
            "shop.toml:22: task 'load': two checks are named 'a'",
        ),
    ],
)
def test_wrong_checks_are_problems(tmp_path: Path, check: str, expected: str) -> None:
    path = _flow(tmp_path, "\n[[tasks.checks]]\n" + check + "\n")
    found = _problems(path)
    assert any(expected in p for p in found), found
    assert all("Traceback" not in p for p in found)


def test_checks_need_a_task_that_writes_a_target(tmp_path: Path) -> None:
    head = (
        HEAD
        + '\n[[tasks]]\nid = "side"\ntype = "transformation"\n[tasks.config]\nsql = "SELECT 1"\n'
    )
    path = _flow(tmp_path, '[[tasks.checks]]\ntype = "row_count"\nmin = 1\n', head=head)
    (problem,) = _problems(path)
    assert "shop.toml:27: task 'side': checks need a task that writes a dataset" in problem


def test_a_relationship_runs_after_the_task_that_writes_its_dataset(tmp_path: Path) -> None:
    """Like ``ref()`` in SQL, a check's ``to`` is an edge: no ``dependencies`` entry needed."""
    head = HEAD.replace('dependencies = ["customers"]\n', "")
    assert head != HEAD
    check = '[[tasks.checks]]\ntype = "relationships"\ncolumn = "cust"\nto = "ref(\'customers\')"\n'
    graph = validate_flow(load_flow(_flow(tmp_path, check, head=head)))
    assert graph.has_edge("customers", "load")
    assert graph.topological_order().index("customers") < graph.topological_order().index("load")


def test_compare_to_the_current_run_needs_an_upstream_task(tmp_path: Path) -> None:
    check = (
        '[[tasks.checks]]\ntype = "row_count"\nwithin_percent = 5\n'
        'compare_to = {task = "load", key = "rows_loaded", run = "current"}\n'
    )
    (problem,) = _problems(_flow(tmp_path, check))
    assert (
        "shop.toml:21: task 'load': check 'row_count': compare_to reads the current run's value "
        "of 'load', which is not upstream of 'load'"
    ) in problem
    upstream = check.replace('task = "load"', 'task = "customers"')
    validate_flow(load_flow(_flow(tmp_path, upstream)))
    with pytest.raises(FlowValidationError) as exc:
        validate_flow(load_flow(_flow(tmp_path, upstream)), xcom_enabled=False)
    assert "compare_to reads XCom, which is disabled" in str(exc.value)


def test_an_expression_template_that_does_not_parse(tmp_path: Path) -> None:
    check = '[[tasks.checks]]\ntype = "expression"\nsql = "SELECT * FROM {{ target_dataset"\n'
    (problem,) = _problems(_flow(tmp_path, check))
    assert "shop.toml:21: task 'load': check 'expression': SQL template syntax error" in problem


def test_checks_must_be_tables(tmp_path: Path) -> None:
    head = HEAD.replace(
        'target_dataset_id = "orders"', 'target_dataset_id = "orders"\nchecks = "x"'
    )
    (problem,) = _problems(_flow(tmp_path, "", head=head))
    assert "shop.toml:17: task 'load': 'checks' must be [[tasks.checks]] tables" in problem


def test_a_ref_to_another_flow_resolves_to_its_namespace(tmp_path: Path) -> None:
    from qarion_etl.definitions.check_refs import resolve_ref

    crm = _flow(
        tmp_path,
        "",
        head='id = "crm"\nnamespace = "crm_ns"\n[[tasks]]\nid = "c"\ntype = "transformation"\n'
        'target_dataset_id = "accounts"\n[tasks.config]\nsql = "SELECT 1 AS id"\n',
        name="crm",
    )
    path = _flow(
        tmp_path,
        '[[tasks.checks]]\ntype = "relationships"\ncolumn = "cust"\nto = "ref(\'accounts\')"\n'
        '[[tasks.checks]]\ntype = "relationships"\ncolumn = "cust"\n'
        "to = \"ref('crm', 'accounts')\"\nfield = \"id\"\n",
    )
    flow = load_flow(path)
    index = ModelIndex([load_flow(crm), flow])  # the project's flows
    validate_flow(flow, index=index)
    one, two = flow.task("load").checks
    assert resolve_ref(flow, one.to_flow, one.to_dataset or "", index) == ("crm_ns", "accounts")
    assert resolve_ref(flow, two.to_flow, two.to_dataset or "", index) == ("crm_ns", "accounts")
    assert resolve_ref(flow, None, "customers", index) == ("shop", "customers")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ref('orders')", (None, "orders")),
        ('ref("flow-1", "orders")', ("flow-1", "orders")),
        (" ref( 'a' , 'b' ) ", ("a", "b")),
        ("ref(orders)", None),
        ("ref('a', 'b', 'c')", None),
        ("source('orders')", None),
        ("ref('a.b')", None),
    ],
)
def test_parse_ref(text: str, expected: tuple[str | None, str] | None) -> None:
    assert parse_ref(text) == expected


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["id", "status", "not_null", "unique", "warn", "ref('customers')"]),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.sampled_from(["task", "key", "run", "x"]), st.text(max_size=6)),
)


@settings(max_examples=150, deadline=None)
@given(
    tables=st.lists(
        st.dictionaries(st.sampled_from([*sorted(ALL_KEYS), "bogus"]), _VALUES, max_size=6),
        max_size=3,
    )
)
def test_any_checks_table_is_parsed_or_refused_with_problems(
    tables: list[dict[str, object]],
) -> None:
    from qarion_etl.definitions.checks import check_blocks, parse_checks
    from qarion_etl.definitions.toml import KeyLocator

    found: list[tuple[str, int | None]] = []
    checks = parse_checks(
        [{k: v for k, v in t.items() if v is not None} for t in tables],
        loc=KeyLocator(HEAD),
        task_index=1,
        task_line=13,
        problem=lambda message, line: found.append((message, line)),
        writes_target=True,
        known_columns=("id", "status", "cust"),
    )
    assert check_blocks(KeyLocator(HEAD), 1) == []
    assert all(isinstance(c, CheckSpec) and c.name for c in checks)
    assert len({c.name for c in checks}) == len(checks) or found
    assert all(isinstance(m, str) and m for m, _ in found)


def test_the_readme_example_validates(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Data checks", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    head = """\
id = "shop"
[input]
columns = [{name = "order_id"}, {name = "customer_id"}, {name = "status"}, {name = "amount"}]
[[tasks]]
id = "customers"
type = "transformation"
target_dataset_id = "customers"
[tasks.config]
sql = "SELECT 1 AS customer_id"
[[tasks]]
id = "load_orders"
type = "ingestion"
target_dataset_id = "orders"
dependencies = ["customers"]
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""
    flow = load_flow(_flow(tmp_path, example, head=head))
    validate_flow(flow)
    assert [c.type for c in flow.task("load_orders").checks] == [
        "not_null",
        "unique",
        "accepted_values",
        "relationships",
        "row_count",
        "expression",
    ]


def test_an_ephemeral_task_has_no_checks(tmp_path: Path) -> None:
    head = HEAD + (
        '\n[[tasks]]\nid = "eph"\ntype = "transformation"\nmaterialized = "ephemeral"\n'
        'target_dataset_id = "eph"\n[tasks.config]\nsql = "SELECT 1 AS id"\n'
    )
    path = _flow(tmp_path, '[[tasks.checks]]\ntype = "row_count"\nmin = 1\n', head=head)
    (problem,) = _problems(path)
    assert "task 'eph': an ephemeral task publishes nothing to check" in problem
