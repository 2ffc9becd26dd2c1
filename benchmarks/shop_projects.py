"""The shop project (``tests/fixtures/shop``) at a chosen scale, as qarion-etl and as dbt.

- ``scaled_data(factor)`` writes the three seed files ``factor`` times over, each copy's ids
  shifted past the last, so keys stay unique and every order and payment keeps its owner.
- ``qarion_project`` copies the fixture onto those files, with or without its checks.
- ``dbt_project`` writes the same models for dbt: seeds from the same files (the two typed
  ones with the same column types), the same SQL with ``ref()`` and the macro, and each
  ``[[tasks.checks]]`` as the dbt test that does the same (``schema.yml`` for the generic
  ones; a singular test for ``row_count`` and ``expression``).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.common import DATA, ROOT

SHOP = ROOT / "tests" / "fixtures" / "shop"
SEEDS = ("raw_customers", "raw_orders", "raw_payments")
#: Per seed file, the columns that hold ids of that file or of another, and whose ids.
_ID_COLUMNS = {
    "raw_customers": {"id": "raw_customers"},
    "raw_orders": {"id": "raw_orders", "user_id": "raw_customers"},
    "raw_payments": {"id": "raw_payments", "order_id": "raw_orders"},
}
_SEED_TYPES = {"integer": "bigint", "string": "varchar", "date": "date", "float": "double"}


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def scaled_data(factor: int) -> Path:
    """``benchmarks/.data/shop_<factor>x/``: the seed files repeated ``factor`` times."""
    folder = DATA / f"shop_{factor}x"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: _read(SHOP / "data" / f"{name}.csv") for name in SEEDS}
    top = {name: max(int(r[0]) for r in rows) for name, (_, rows) in files.items()}
    for name, (header, rows) in files.items():
        shifts = [(header.index(col), top[owner]) for col, owner in _ID_COLUMNS[name].items()]
        with (folder / f"{name}.csv").open("w", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(header)
            for copy in range(factor):
                for row in rows:
                    row = list(row)
                    for index, step in shifts:
                        row[index] = str(int(row[index]) + copy * step)
                    out.writerow(row)
    (folder / "done").write_text("")
    return folder


def strip_checks(text: str) -> str:
    """A flow file without its ``[[tasks.checks]]`` tables (each runs to the next table)."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("[["):
            skipping = line.strip() == "[[tasks.checks]]"
        if not skipping:
            kept.append(line)
    return "".join(kept)


def qarion_project(dest: Path, data: Path, checks: bool = True) -> Path:
    """The fixture in ``dest`` reading ``data``'s files, on a DuckDB file of its own."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(SHOP, dest, ignore=shutil.ignore_patterns(".qarion", "*.duckdb*"))
    for flow in (dest / "flows").glob("*.toml"):
        text = flow.read_text()
        for name in SEEDS:
            text = text.replace(f'"data/{name}.csv"', f'"{data / name}.csv"')
        flow.write_text(text if checks else strip_checks(text))
    return dest


def _flows() -> list[dict[str, Any]]:
    return [tomllib.loads(p.read_text()) for p in sorted((SHOP / "flows").glob("*.toml"))]


def _dbt_sql(sql: str, dataset: str | None = None) -> str:
    """Our model SQL for dbt: ``ref('flow', 'x')`` is ``ref('x')`` there, ``target_dataset``
    of a check is the model it guards."""
    sql = re.sub(r"ref\('[^']+',\s*'([^']+)'\)", r"ref('\1')", sql)
    if dataset is not None:
        sql = sql.replace("{{ target_dataset }}", f"{{{{ ref('{dataset}') }}}}")
    return sql.strip() + "\n"


def _generic_test(check: dict[str, Any]) -> Any:
    kind = check["type"]
    args: dict[str, Any] = {}
    if kind == "accepted_values":
        args["values"] = check["values"]
    elif kind == "relationships":
        args.update(to=check["to"], field=check["field"])
    test: dict[str, Any] = {"arguments": args} if args else {}
    if check.get("severity") == "warn":
        test["config"] = {"severity": "warn"}
    return {kind: test} if test else kind


def _singular_test(check: dict[str, Any], dataset: str) -> str:
    warn = "{{ config(severity='warn') }}\n" if check.get("severity") == "warn" else ""
    if check["type"] == "expression":
        return warn + _dbt_sql(check["sql"], dataset)
    bounds = []
    if "min" in check:
        bounds.append(f"COUNT(*) < {int(check['min'])}")
    if "max" in check:
        bounds.append(f"COUNT(*) > {int(check['max'])}")
    return (
        f"{warn}SELECT COUNT(*) AS n FROM {{{{ ref('{dataset}') }}}} HAVING {' OR '.join(bounds)}\n"
    )


def _tests(dest: Path) -> dict[str, list[dict[str, Any]]]:
    """Write the singular tests; return the generic ones as ``schema.yml`` entries."""
    entries: dict[str, list[dict[str, Any]]] = {"seeds": [], "models": []}
    for doc in _flows():
        for task in doc["tasks"]:
            dataset = task["target_dataset_id"]
            columns: dict[str, list[Any]] = {}
            for n, check in enumerate(task.get("checks", ())):
                if check["type"] in ("row_count", "expression"):
                    path = dest / "tests" / f"{dataset}_{check['type']}_{n}.sql"
                    path.write_text(_singular_test(check, dataset))
                else:
                    columns.setdefault(check["column"], []).append(_generic_test(check))
            if columns:
                kind = "seeds" if task["type"] == "ingestion" else "models"
                cols = [{"name": c, "data_tests": t} for c, t in columns.items()]
                entries[kind].append({"name": dataset, "columns": cols})
    return entries


def _seed_config() -> dict[str, Any]:
    """``column_types`` of the seeds whose ingestion declares its columns."""
    seeds: dict[str, Any] = {}
    for doc in _flows():
        for task in doc["tasks"]:
            if task["type"] == "ingestion" and task.get("columns"):
                types = {c["name"]: _SEED_TYPES[c["schema_type"]] for c in task["columns"]}
                seeds[task["target_dataset_id"]] = {"+column_types": types}
    return seeds


def _models(dest: Path) -> None:
    for doc in _flows():
        for task in doc["tasks"]:
            if task["type"] != "transformation":
                continue
            materialized = task.get("materialized", "table")
            folder = dest / "models" / ("staging" if materialized == "view" else "marts")
            folder.mkdir(parents=True, exist_ok=True)
            config = f"{{{{ config(materialized='{materialized}') }}}}\n"
            (folder / f"{task['target_dataset_id']}.sql").write_text(
                config + _dbt_sql(task["config"]["sql"])
            )


def dbt_project(dest: Path, data: Path, threads: int) -> Path:
    """The shop as a dbt project in ``dest`` (YAML written as JSON, which YAML reads)."""
    shutil.rmtree(dest, ignore_errors=True)
    for sub in ("seeds", "macros", "tests"):
        (dest / sub).mkdir(parents=True)
    for name in SEEDS:
        shutil.copy(data / f"{name}.csv", dest / "seeds" / f"{name}.csv")
    for macro in (SHOP / "macros").glob("*.sql"):
        shutil.copy(macro, dest / "macros" / macro.name)
    _models(dest)
    project = {
        "name": "shop",
        "version": "1.0.0",
        "config-version": 2,
        "profile": "shop",
        "flags": {"send_anonymous_usage_stats": False, "partial_parse": True},
        "seeds": {"shop": _seed_config()},
    }
    (dest / "dbt_project.yml").write_text(json.dumps(project, indent=2))
    profile = {"type": "duckdb", "path": str(dest / "warehouse.duckdb"), "threads": threads}
    profiles = {"shop": {"target": "bench", "outputs": {"bench": profile}}}
    (dest / "profiles.yml").write_text(json.dumps(profiles, indent=2))
    schema = {"version": 2, **_tests(dest)}
    (dest / "models" / "schema.yml").write_text(json.dumps(schema, indent=2))
    return dest
