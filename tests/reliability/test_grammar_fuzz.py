"""Fuzzing the flow and configuration grammar through the command line (design §11).

Hypothesis builds flow files and project files from the grammar the README documents
(models too: ``ref()``, macros, ``materialized``, per-task schemas, ``[[tasks.checks]]``):
known sections and keys, mostly with values of the right shape, often with a value of
another type, out of range, non-finite or hostile, and now and then an unknown key. Each
document goes through ``validate``, ``ls``, ``graph``, ``render``, ``config show`` and a
dry run (and a real run for a share of the flows), and every answer must be a result or a
clear error: exit 0, 1, 2 or 3, never an internal error, never a traceback.

The budget is ``QARION_FUZZ_EXAMPLES`` cases per test (300 by default, so ``make test``
stays quick; ``make fuzz`` runs 10,000).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import cli

BUDGET = int(os.environ.get("QARION_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=BUDGET,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- values -----------------------------------------------------------------------------
odd_scalars = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([10**26, -1, 0, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(["", "..", "../x", "a b", "é名", "x" * 300, "\u202e", "${env:NOPE}"]),
    st.just([]),
    st.just({}),
)
idents = st.integers(0, 9).flatmap(
    lambda n: (
        st.sampled_from(["a", "b", "c", "load", "stats", "orders", "t_1"])
        if n < 7
        else st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
        if n < 9
        else st.text(max_size=12)
    )
)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the right shape (39 in 40); sometimes anything."""
    return st.integers(0, 39).flatmap(lambda n: odd_scalars if n == 0 else good)


SQL = st.one_of(
    st.sampled_from(
        [
            "SELECT 1 AS x",
            "SELECT {{ xcom_pull('a', key='x') }} AS y",
            "SELECT {{ var('v', 1) }} AS v",
            "SELECT * FROM {{ source_dataset }}",
            "SELECT {{ ti.xcom_pull(task_ids='b') }}",
            "SELECT {{ batch_id }}, '{{ dag_run_id }}', '{{ ds }}'",
            "SELECT {{ cycler.__init__.__globals__ }}",
            "SELECT {% for i in range(3) %}{{ i }},{% endfor %} 1",
            "SELECT {{ nope }}",
            "SELECT {{ 1/0 }}",
            "SELECT {{",
            "{% raw %}SELECT 1{% endraw %}",
            "SELEC oops",
            "",
            "SELECT * FROM {{ ref('orders') }}",
            "SELECT * FROM {{ ref('a') }} x JOIN {{ ref('b') }} AS y ON 1 = 1",
            "SELECT * FROM {{ ref('f', 'b') }}",
            "SELECT * FROM {{ ref('other_flow', 'x') }}",
            "SELECT {{ ref(1) }}",
            "SELECT {{ ref() }}",
            "{% if is_incremental() %}SELECT 1 AS x{% else %}SELECT 2 AS x{% endif %}",
            "SELECT {{ twice(2) }} AS x",
            "SELECT {{ nomacro(2) }} AS x",
        ]
    ),
    st.text(max_size=40),
)
column = st.fixed_dictionaries(
    {"name": maybe(idents)},
    optional={
        "schema_type": maybe(
            st.sampled_from(
                ["string", "integer", "float", "decimal", "boolean", "date", "timestamp", "uuid"]
            )
        ),
        "required": maybe(st.booleans()),
        "description": maybe(st.text(max_size=10)),
    },
)
check = st.fixed_dictionaries(
    {
        "type": maybe(
            st.sampled_from(
                [
                    "not_null",
                    "unique",
                    "accepted_values",
                    "relationships",
                    "row_count",
                    "expression",
                    "nope",
                ]
            )
        )
    },
    optional={
        "column": maybe(st.one_of(idents, st.lists(idents, max_size=2))),
        "severity": maybe(st.sampled_from(["error", "warn", "fatal"])),
        "name": maybe(idents),
        "values": maybe(st.lists(st.one_of(st.integers(0, 3), idents), max_size=3)),
        "to": maybe(st.sampled_from(["ref('orders')", "ref('f', 'a')", "orders", "ref(", ""])),
        "field": maybe(idents),
        "min": maybe(st.integers(-1, 5)),
        "max": maybe(st.integers(-1, 5)),
        "compare_to": maybe(
            st.fixed_dictionaries(
                {"task": maybe(idents), "key": maybe(idents)},
                optional={"run": maybe(st.sampled_from(["previous", "current", "next"]))},
            )
        ),
        "within_percent": maybe(st.floats(-10, 200)),
        "sql": maybe(SQL),
    },
)
task_common = {
    "name": maybe(st.text(max_size=10)),
    "dependencies": maybe(st.lists(idents, max_size=3)),
    "retries": maybe(st.integers(0, 3)),
    "retry_delay_seconds": maybe(st.floats(0, 2)),
    "retry_exponential_backoff": maybe(st.booleans()),
    "retry_on": maybe(st.sampled_from(["transient", "any", "never"])),
    "timeout_seconds": maybe(st.floats(0.1, 100)),
    "do_xcom_push": maybe(st.booleans()),
    "tags": maybe(st.lists(idents, max_size=2)),
    "properties": maybe(
        st.fixed_dictionaries(
            {}, optional={"processing_type": st.sampled_from(["FULL_REFRESH", "INCREMENTAL", "X"])}
        )
    ),
    "checks": maybe(st.lists(check, max_size=3)),
    "description": maybe(st.text(max_size=10)),
}
transformation = st.fixed_dictionaries(
    {
        "id": maybe(idents),
        "type": maybe(st.just("transformation")),
        "config": maybe(st.fixed_dictionaries({"sql": maybe(SQL)})),
    },
    optional={
        **task_common,
        "source_dataset_id": maybe(idents),
        "target_dataset_id": maybe(idents),
        "materialized": maybe(
            st.sampled_from(["table", "view", "ephemeral", "incremental", "snapshot"])
        ),
        "unique_key": maybe(st.one_of(idents, st.lists(idents, max_size=2))),
        "columns": maybe(st.lists(column, max_size=2)),
    },
)
ingestion = st.fixed_dictionaries(
    {
        "id": maybe(idents),
        "type": maybe(st.just("ingestion")),
        "target_dataset_id": maybe(idents),
        "config": maybe(
            st.fixed_dictionaries(
                {
                    "path": maybe(st.sampled_from(["data/orders.csv", "missing.csv", "data"])),
                    "format": maybe(st.sampled_from(["csv", "jsonl", "parquet", "xml"])),
                },
                optional={
                    "on_bad_rows": maybe(st.sampled_from(["fail", "skip", "quarantine", "ignore"])),
                    "max_bad_rows": maybe(st.integers(-2, 10)),
                    "delimiter": maybe(st.sampled_from([",", ";", "", ",,"])),
                },
            )
        ),
    },
    optional={
        **task_common,
        "primary_key": maybe(st.one_of(idents, st.lists(idents, max_size=2))),
        "columns": maybe(st.lists(column, max_size=3)),
    },
)
task = st.one_of(transformation, transformation, ingestion)
flow_doc = st.fixed_dictionaries(
    {"tasks": maybe(st.lists(task, min_size=1, max_size=4, unique_by=lambda t: str(t.get("id"))))},
    optional={
        "id": maybe(idents),
        "name": maybe(st.text(max_size=10)),
        "flow_type": maybe(st.sampled_from(["standard", "streaming"])),
        "namespace": maybe(idents),
        "tags": maybe(st.lists(idents, max_size=2)),
        "input": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "primary_key": maybe(st.lists(idents, max_size=2)),
                    "columns": maybe(st.lists(column, max_size=3)),
                },
            )
        ),
    },
)
config_doc = st.fixed_dictionaries(
    {},
    optional={
        "project": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": maybe(st.text(max_size=8)),
                    "flows_dir": maybe(st.sampled_from(["flows", "nope", "..", ""])),
                },
            )
        ),
        "metadata": maybe(st.fixed_dictionaries({}, optional={"namespace": maybe(idents)})),
        "xcom": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "enabled": maybe(st.booleans()),
                    "backend": maybe(
                        st.sampled_from(
                            ["database", "local_file", "s3", "nope", "os:system", "x.y:Z"]
                        )
                    ),
                    "backend_config": maybe(
                        st.dictionaries(
                            st.sampled_from(["table_name", "base_path", "bucket", "bogus"]),
                            odd_scalars,
                            max_size=2,
                        )
                    ),
                    "max_value_bytes": maybe(st.integers(-1, 10**7)),
                    "xcom_backend": maybe(st.text(max_size=10)),
                },
            )
        ),
        "credentials": maybe(
            st.dictionaries(idents, st.dictionaries(idents, odd_scalars, max_size=2), max_size=2)
        ),
        "selectors": maybe(st.dictionaries(idents, odd_scalars, max_size=2)),
    },
)


# --- TOML -------------------------------------------------------------------------------
def _key(k: str) -> str:
    return _value(k) if isinstance(k, str) else str(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return (
            '"'
            + "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}" for c in v)
            + '"'
        )
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(doc: dict[str, Any]) -> str:
    """Scalars first, then tables, then arrays of tables (``[[tasks]]`` with subtables)."""
    lines = [
        f"{_key(k)} = {_value(v)}"
        for k, v in doc.items()
        if not isinstance(v, dict | list)
        or (isinstance(v, list) and not all(isinstance(x, dict) for x in v) or v == [])
    ]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{_key(k)}]")
            lines += [f"{_key(kk)} = {_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"[[{_key(k)}]]")
                lines += [
                    f"{_key(kk)} = {_value(vv)}"
                    for kk, vv in item.items()
                    if not isinstance(vv, dict)
                ]
                for kk, vv in item.items():
                    if isinstance(vv, dict):
                        lines.append(f"[{_key(k)}.{_key(kk)}]")
                        lines += [f"{_key(a)} = {_value(b)}" for a, b in vv.items()]
    return "\n".join(lines) + "\n"


# --- the checks -------------------------------------------------------------------------
def _clean(result: Any, *args: str) -> None:
    out = result.stdout + result.stderr
    assert result.exit_code in (0, 1, 2, 3), (args, result.exit_code, out[-2000:])
    assert "internal error" not in out, (args, out[-2000:])
    assert "Traceback" not in out, (args, out[-2000:])


def _project(root: Path, config: str) -> Path:
    if root.exists():
        shutil.rmtree(root)
    (root / "flows").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "orders.csv").write_text("id,value\n1,2.5\n2,7\n")
    (root / "macros").mkdir()
    (root / "macros" / "m.sql").write_text("{% macro twice(x) %}({{ x }} * 2){% endmacro %}\n")
    (root / "qarion-etl.toml").write_text(config)
    return root


BASE_CONFIG = """\
[engine]
url = "duckdb:///warehouse.duckdb"
[metadata]
url = "sqlite:///.qarion/metadata.db"
"""


@FUZZ
@given(flow_doc, st.integers(0, 9))
def test_generated_flows_get_a_result_or_a_clear_error(
    tmp_path: Path, doc: dict[str, Any], pick: int
) -> None:
    project = _project(tmp_path / "p", BASE_CONFIG)
    if pick == 9:  # now and then a key the grammar does not know
        doc = {**doc, "bogus_key": 1}
    (project / "flows" / "f.toml").write_text(to_toml(doc))
    first_task = "a"
    tasks = doc.get("tasks")
    if isinstance(tasks, list) and tasks and isinstance(tasks[0], dict):
        first_task = str(tasks[0].get("id", "a"))
    commands: list[tuple[str, ...]] = [
        ("validate",),
        ("ls", "--output", "json"),
        ("graph", "f"),
        ("render", "f", first_task, "--xcom", "a.x=1"),
        ("run", "f", "--dry-run"),
    ]
    if pick == 0:  # a real run for one flow in ten: the engine meets what validation let in
        commands.append(("run", "f", "--max-workers", "2"))
    for args in commands:
        _clean(cli(*args, project=project), *args)


@FUZZ
@given(config_doc)
def test_generated_project_files_get_a_result_or_a_clear_error(
    tmp_path: Path, doc: dict[str, Any]
) -> None:
    project = _project(tmp_path / "p", to_toml(doc))
    (project / "flows" / "f.toml").write_text(
        'id = "f"\n[[tasks]]\nid = "a"\ntype = "transformation"\n[tasks.config]\nsql = "SELECT 1 AS x"\n'
    )
    for args in (("config", "show"), ("validate",), ("ls",), ("runs", "list")):
        _clean(cli(*args, project=project), *args)
