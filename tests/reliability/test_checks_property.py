"""A property test of checks that guard the publish (design §2a), on DuckDB and SQLite.

Hypothesis draws a file of rows (duplicate ids, missing customers, unexpected statuses) and
a set of checks with random severities. A first run publishes clean rows; a second run
loads the drawn rows. After it: each check's failing count is the one worked out in
Python from the rows; the run failed exactly when an ``error`` check failed; the published
table holds the drawn rows when the run succeeded and the clean rows, unchanged, when it
failed; no staging table is left. ``QARION_PROPERTY_EXAMPLES`` sets the budget.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import cli, make_project, write_flow
from tests.runkit import query, table, table_names

EXAMPLES = int(os.environ.get("QARION_PROPERTY_EXAMPLES", "25"))
ACCEPTED = ("open", "closed")
CLEAN = [(1, "open", 1), (2, "closed", 2)]

FLOW = """\
id = "guarded"
namespace = "g"
[input]
columns = [
  {{name = "id", schema_type = "integer"}},
  {{name = "status"}},
  {{name = "cust", schema_type = "integer"}},
]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"
{checks}
"""

rows = st.lists(
    st.tuples(
        st.integers(1, 6),
        st.sampled_from(["open", "closed", "weird"]),
        st.one_of(st.none(), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=8,
)
severity = st.sampled_from(["error", "warn"])
checks = st.fixed_dictionaries(
    {},
    optional={
        "not_null": severity,
        "unique": severity,
        "accepted_values": severity,
        "row_count": st.tuples(severity, st.integers(0, 4), st.integers(4, 9)),
    },
)


def _checks_toml(drawn: dict[str, Any]) -> str:
    parts = []
    if "not_null" in drawn:
        parts.append(f'type = "not_null"\ncolumn = "cust"\nseverity = "{drawn["not_null"]}"')
    if "unique" in drawn:
        parts.append(f'type = "unique"\ncolumn = "id"\nseverity = "{drawn["unique"]}"')
    if "accepted_values" in drawn:
        parts.append(
            f'type = "accepted_values"\ncolumn = "status"\nvalues = {json.dumps(ACCEPTED)}\n'
            f'severity = "{drawn["accepted_values"]}"'
        )
    if "row_count" in drawn:
        sev, low, high = drawn["row_count"]
        parts.append(f'type = "row_count"\nmin = {low}\nmax = {high}\nseverity = "{sev}"')
    return "".join(f"\n[[tasks.checks]]\n{p}\n" for p in parts)


def _expected(data: list[tuple[int, str, int | None]], drawn: dict[str, Any]) -> dict[str, int]:
    """Each drawn check's failing count, from the rows alone."""
    out = {}
    if "not_null" in drawn:
        out["not_null"] = sum(1 for _, _, cust in data if cust is None)
    if "unique" in drawn:
        out["unique"] = sum(1 for n in Counter(i for i, _, _ in data).values() if n > 1)
    if "accepted_values" in drawn:
        out["accepted_values"] = sum(1 for _, status, _ in data if status not in ACCEPTED)
    if "row_count" in drawn:
        _, low, high = drawn["row_count"]
        out["row_count"] = 0 if low <= len(data) <= high else 1
    return out


def _csv(data: list[tuple[int, str, int | None]]) -> str:
    return "id,status,cust\n" + "".join(f"{i},{s},{'' if c is None else c}\n" for i, s, c in data)


def _published(url: str) -> list[tuple[Any, ...]]:
    got = query(url, f"SELECT id, status, cust FROM {table(url, 'g', 'orders')}")
    return sorted(((int(i), s, None if c is None else int(c)) for i, s, c in got), key=_order)


def _order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(-1 if v is None else v for v in row)


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=rows, drawn=checks)
def test_checks_decide_the_publish(
    tmp_path: Path, kind: str, data: list[tuple[int, str, int | None]], drawn: dict[str, Any]
) -> None:
    root = tmp_path / "p"
    shutil.rmtree(root, ignore_errors=True)
    suffix = "duckdb" if kind == "duckdb" else "db"
    url = f"{kind}:///{root / f'w.{suffix}'}"
    project = make_project(root, engine_url=url, example=False)
    write_flow(project, "guarded", FLOW.format(checks=_checks_toml(drawn)))
    (project / "data").mkdir()
    (project / "data" / "orders.csv").write_text(_csv(CLEAN))
    # The clean rows pass every check the strategy can draw, but a row_count minimum.
    first = cli("run", "guarded", "--json", project=project)
    clean_ok = "row_count" not in drawn or drawn["row_count"][1] <= len(CLEAN)
    if not clean_ok and drawn["row_count"][0] == "error":
        assert first.exit_code == 1
        return
    assert first.exit_code == 0, first.output
    (project / "data" / "orders.csv").write_text(_csv(data))
    second = cli("run", "guarded", "--json", project=project)
    assert second.exit_code in (0, 1), second.output
    assert "Traceback" not in second.output and "internal error" not in second.output
    doc = json.loads(second.stdout)
    task = next(t for t in doc["tasks"] if t["task_id"] == "load")
    found = {c["type"]: c for c in task.get("checks") or []}
    expected = _expected(data, drawn)
    assert {k: found[k]["failing"] for k in expected} == expected, (data, drawn, found)
    errors = [k for k, n in expected.items() if n and _severity(drawn, k) == "error"]
    for name, n in expected.items():
        status = "pass" if n == 0 else ("fail" if _severity(drawn, name) == "error" else "warn")
        assert found[name]["status"] == status
    assert second.exit_code == (1 if errors else 0), (data, drawn, second.output)
    want = sorted(data if not errors else CLEAN, key=_order)
    assert _published(url) == want
    assert [n for n in table_names(url, "g") if n.startswith("_qtmp_")] == []


def _severity(drawn: dict[str, Any], name: str) -> str:
    value = drawn[name]
    return str(value[0] if isinstance(value, tuple) else value)
