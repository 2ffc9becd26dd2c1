from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.dag import build_dag, topological_order
from qarion_etl.definitions.flow_parser import load_flow
from qarion_etl.definitions.validation import validate_flow
from qarion_etl.errors import FlowValidationError
from tests.helpers import FIXTURE_FLOWS, ROOT


def problems_of(path: Path, *, xcom_enabled: bool = True) -> list[str]:
    with pytest.raises(FlowValidationError) as exc:
        validate_flow(load_flow(path), xcom_enabled=xcom_enabled)
    assert exc.value.exit_code == 2
    return [p.format(exc.value.path) for p in exc.value.problems]


def test_seed_flow_parses_into_typed_models() -> None:
    flow = load_flow(ROOT / "flows" / "data_pipeline.toml")
    assert flow.id == "data_pipeline" and flow.namespace == "production"
    assert flow.input.primary_key == ("id",)
    assert [(c.name, c.schema_type, c.required) for c in flow.input.columns] == [
        ("id", "integer", True),
        ("value", "float", True),
    ]
    ingest = flow.task("ingest_orders")
    assert ingest.type == "ingestion" and ingest.target_dataset_id == "orders_landing"
    assert ingest.config["path"] == "data/orders.csv" and ingest.processing_type == "FULL_REFRESH"
    assert ingest.retries == 0 and ingest.do_xcom_push is True and ingest.timeout_seconds is None
    assert flow.task("filter_high_value").dependencies == ("calculate_stats",)
    graph = validate_flow(flow)
    assert topological_order(graph, flow) == [
        "ingest_orders",
        "calculate_stats",
        "filter_high_value",
    ]
    # dataset edge: filter reads what ingest writes
    assert graph.has_edge("ingest_orders", "filter_high_value")


def test_cycle_is_printed() -> None:
    (msg,) = problems_of(FIXTURE_FLOWS / "cycle.toml")
    assert "dependency cycle:" in msg
    assert "a -> b -> c -> a" in msg or "b -> c -> a -> b" in msg or "c -> a -> b -> c" in msg
    assert "cycle.toml:" in msg


def test_unknown_dependency_suggests() -> None:
    (msg,) = problems_of(FIXTURE_FLOWS / "unknown_dep.toml")
    assert (
        "unknown_dep.toml:13: task 'report': unknown dependency 'laod' (did you mean 'load'?)"
        in msg
    )


def test_duplicate_task_id() -> None:
    (msg,) = problems_of(FIXTURE_FLOWS / "dup_task.toml")
    assert "duplicate task id 'same'" in msg


def test_two_writers_of_one_dataset() -> None:
    (msg,) = problems_of(FIXTURE_FLOWS / "dup_writer.toml")
    assert "dataset 'out' is written by several tasks: one, two" in msg


def test_unknown_type_and_field_reported_together() -> None:
    msgs = problems_of(FIXTURE_FLOWS / "unknown_type.toml")
    text = "\n".join(msgs)
    assert "unknown key 'retrys' in [[tasks]] (did you mean 'retries'?)" in text
    assert "unknown task type 'ingestoin' (did you mean 'ingestion'?)" in text
    assert "unknown_type.toml:7: task 'load': unknown key 'retrys'" in text


def test_missing_required_config() -> None:
    text = "\n".join(problems_of(FIXTURE_FLOWS / "missing_config.toml"))
    assert "task 'load': missing config 'path'" in text
    assert "task 'calc': missing config 'sql'" in text
    assert "unknown key 'query' in [tasks.config] of a transformation task" in text


def test_jinja_syntax_error_has_the_file_line() -> None:
    (msg,) = problems_of(FIXTURE_FLOWS / "bad_jinja.toml")
    assert "SQL template syntax error" in msg
    # the template's 4th line ("FROM {{ source_dataset") ends at file line 11; Jinja reports EOF on line 4/5
    assert "bad_jinja.toml:1" in msg and "task 'calc'" in msg


def test_pull_from_a_task_that_is_not_upstream() -> None:
    (msg,) = problems_of(FIXTURE_FLOWS / "pull_not_upstream.toml")
    assert "xcom_pull from 'stats', which is not upstream of 'filter'" in msg


def test_pull_with_xcom_disabled() -> None:
    msgs = problems_of(ROOT / "flows" / "data_pipeline.toml", xcom_enabled=False)
    assert any("XCom is disabled" in m for m in msgs)


def test_toml_syntax_error_is_located() -> None:
    with pytest.raises(FlowValidationError) as exc:
        load_flow(FIXTURE_FLOWS / "bad_toml.toml")
    assert exc.value.problems[0].line == 5


def test_pull_from_another_flow_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        '[[tasks]]\nid = "t"\ntype = "transformation"\n[tasks.config]\n'
        "sql = \"SELECT {{ xcom_pull('x', flow_id='other', batch_id=5) }}\"\n"
    )
    validate_flow(load_flow(path))


def test_flow_defaults_id_and_namespace_from_file_name(tmp_path: Path) -> None:
    path = tmp_path / "my_flow.toml"
    path.write_text(
        '[[tasks]]\nid = "t"\ntype = "transformation"\n[tasks.config]\nsql = "SELECT 1"\n'
    )
    flow = load_flow(path)
    assert flow.id == "my_flow" and flow.namespace == "my_flow"


def test_hostile_ids_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        '[[tasks]]\nid = "x; DROP TABLE y"\ntype = "transformation"\ntarget_dataset_id = "a\\"b"\n'
        '[tasks.config]\nsql = "SELECT 1"\n'
    )
    with pytest.raises(FlowValidationError) as exc:
        load_flow(path)
    text = str(exc.value)
    assert "must be letters, digits" in text and "target_dataset_id" in text


# --- property: random graphs either validate or fail with a graph error, never crash ---

names = st.sampled_from([f"t{i}" for i in range(8)])


@st.composite
def random_flows(draw: st.DrawFn) -> str:
    ids = draw(st.lists(names, min_size=1, max_size=8))
    parts = []
    for tid in ids:
        deps = draw(st.lists(st.one_of(names, st.just("ghost")), max_size=3))
        target = draw(st.one_of(st.none(), st.sampled_from(["d1", "d2", "d3"])))
        source = draw(st.one_of(st.none(), st.sampled_from(["d1", "d2", "d3"])))
        part = (
            f'[[tasks]]\nid = "{tid}"\ntype = "transformation"\ndependencies = {deps!r}\n'.replace(
                "'", '"'
            )
        )
        if target:
            part += f'target_dataset_id = "{target}"\n'
        if source:
            part += f'source_dataset_id = "{source}"\n'
        part += '[tasks.config]\nsql = "SELECT 1 AS x"\n'
        parts.append(part)
    return "\n".join(parts)


@settings(max_examples=150, deadline=None)
@given(random_flows())
def test_random_graphs_validate_or_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("g") / "g.toml"
    path.write_text(text)
    try:
        graph = validate_flow(load_flow(path))
    except FlowValidationError as exc:
        assert exc.problems
        for p in exc.problems:
            assert any(
                s in p.message
                for s in (
                    "cycle",
                    "unknown dependency",
                    "duplicate task id",
                    "written by several tasks",
                    "depend on itself",
                )
            ), p.message
    else:
        import networkx as nx

        flow = load_flow(path)
        reference = build_dag(flow)
        assert nx.is_directed_acyclic_graph(reference)
        assert sorted(graph.edges()) == sorted(reference.edges())
        order = topological_order(graph, flow)
        assert order == topological_order(reference, flow)
        for node in graph:
            assert graph.ancestors(node) == nx.ancestors(reference, node)
            assert graph.descendants(node) == nx.descendants(reference, node)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, names), max_size=20))
def test_cycle_finding_agrees_with_networkx(edges: list[tuple[str, str]]) -> None:
    import networkx as nx

    from qarion_etl.definitions.graph import TaskGraph

    light, reference = TaskGraph(), nx.DiGraph()
    for a, b in edges:
        light.add_edge(a, b)
        reference.add_edge(a, b)
    cycle = light.find_cycle()
    assert bool(cycle) == (not nx.is_directed_acyclic_graph(reference))
    if cycle:
        assert cycle[0] == cycle[-1]
        for a, b in zip(cycle, cycle[1:], strict=False):
            assert reference.has_edge(a, b)


def test_undefined_template_names_are_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        '[[tasks]]\nid = "a"\ntype = "transformation"\nsource_dataset_id = "x"\n[tasks.config]\n'
        'sql = """\nSELECT *\nFROM {{ source_dataset }}\nWHERE b = {{ batchid }}\n'
        '{% for c in [1, 2] %} AND {{ c }} > 0{% endfor %}\n"""\n'
    )
    (msg,) = problems_of(path)
    assert (
        "f.toml:9: task 'a': SQL template uses undefined name 'batchid' (did you mean 'batch_id'?)"
        in msg
    )


def test_target_dataset_needs_a_target(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        '[[tasks]]\nid = "a"\ntype = "transformation"\n[tasks.config]\n'
        'sql = "SELECT * FROM {{ target_dataset }}"\n'
    )
    (msg,) = problems_of(path)
    assert "undefined name 'target_dataset' (the task has no target_dataset_id)" in msg
