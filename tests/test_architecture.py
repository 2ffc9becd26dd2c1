"""The package's dependency rules, read from the source (every import, at any depth).

- No import cycle between the project's modules, counting imports inside functions and
  under ``TYPE_CHECKING`` as well as module-level ones.
- ``definitions`` imports nothing of ``run``, ``db``, ``tasks``, ``xcom`` or ``cli``.
- ``db`` imports nothing above it (only the leaves: ``errors``, ``masking``).
- ``tasks`` never imports ``run``, ``xcom`` or ``cli``; ``run`` never imports ``cli``.
- The XCom core (``qarion_etl/xcom/*.py``) imports no backend module.
- Only ``cli`` imports typer and rich (ruff's ``banned-api`` says so too).
- ``airflow`` (the DAG factory and operator) sits beside ``cli`` on top of ``project``:
  neither imports the other, and no stage below imports it. Only it and the
  ``${airflow_conn:…}`` resolver in ``definitions.connections`` import Airflow itself.
- ``report`` (the HTML pictures) and ``ui`` (the web UI, which serves them) sit on top too:
  no stage below imports them, ``report`` imports neither face, and only ``ui`` imports
  Starlette and uvicorn.
- Engines live in ``db``: no module outside it compares engine names or reads how a
  dialect loads (its loading fields); it asks the dialect instead. No function in ``db`` or
  ``run`` is longer than 60 lines.
- The library speaks its own language: only ``cli`` raises ``UsageError`` itself; the rest
  raise its typed subclasses (``RunNotFound``, ``TaskNotFound`` …), whose words name no flag.
ARCHITECTURE.md explains the rules; this test keeps them true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "qarion_etl"
LEAVES = {
    "qarion_etl.errors",
    "qarion_etl.masking",
    "qarion_etl.escaping",
    "qarion_etl.jsontext",
    "qarion_etl.filetext",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; ``from a import b`` counts ``a.b`` if a module)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {
    name: {m for m in _imports(path) if m in MODULES and m != name}
    for name, path in MODULES.items()
}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_was_read() -> None:
    assert len(MODULES) > 60
    assert "qarion_etl.db.engines" in GRAPH["qarion_etl.db.service"] | {
        m for d in GRAPH["qarion_etl.db.service"] for m in GRAPH[d]
    }


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components; a package imported by its own modules is
    not a cycle (``qarion_etl.xcom`` re-exports from ``qarion_etl.xcom.service``)."""

    def parent_edge(a: str, b: str) -> bool:
        return a.startswith(b + ".") and MODULES[b].name == "__init__.py"

    edges = {a: {b for b in bs if not parent_edge(a, b)} for a, bs in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


#: The faces on top (the command line, Airflow, the pictures and the web UI).
FACES = {"cli", "airflow", "report", "ui"}
RULES = [
    ("definitions", {"run", "db", "tasks", "xcom", "project", "diagnostics"} | FACES),
    ("db", {"definitions", "run", "tasks", "xcom", "project", "diagnostics"} | FACES),
    ("tasks", {"run", "xcom", "project", "diagnostics"} | FACES),
    ("run", {"diagnostics"} | FACES),
    ("xcom", {"run", "tasks", "definitions", "project", "diagnostics"} | FACES),
    ("cli", {"airflow"}),
    ("airflow", {"cli", "report", "ui"}),
    # The pictures are drawn from the library; the web UI serves them.
    ("report", {"cli", "airflow", "ui"}),
    ("ui", {"cli", "airflow"}),
]


@pytest.mark.parametrize(("stage", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_stages_import_only_what_they_may(stage: str, forbidden: set[str]) -> None:
    broken = sorted(
        f"{a} imports {b}"
        for a, bs in GRAPH.items()
        if _stage(a) == stage
        for b in bs
        if _stage(b) in forbidden
    )
    assert not broken, broken


def test_db_imports_only_db_and_the_leaves() -> None:
    broken = sorted(
        f"{a} imports {b}"
        for a, bs in GRAPH.items()
        if _stage(a) == "db"
        for b in bs
        if _stage(b) != "db" and b not in LEAVES
    )
    assert not broken, broken


def test_the_xcom_core_imports_no_backend() -> None:
    core = [m for m in GRAPH if m.startswith("qarion_etl.xcom.") and ".backends" not in m]
    broken = sorted(f"{a} imports {b}" for a in core for b in GRAPH[a] if ".backends" in b)
    assert not broken, broken


def test_only_the_cli_imports_typer_and_rich() -> None:
    broken = sorted(
        f"{name} imports {m}"
        for name, path in MODULES.items()
        if _stage(name) != "cli"
        for m in _imports(path)
        if m.split(".")[0] in ("typer", "rich", "click")
    )
    assert not broken, broken


def test_only_the_airflow_face_imports_airflow() -> None:
    broken = sorted(
        f"{name} imports {m}"
        for name, path in MODULES.items()
        if _stage(name) != "airflow" and name != "qarion_etl.definitions.connections"
        for m in _imports(path)
        if m.split(".")[0] == "airflow"
    )
    assert not broken, broken


def test_only_the_ui_imports_the_web_stack() -> None:
    broken = sorted(
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in PACKAGE.rglob("*.py")
        if "ui" not in path.relative_to(PACKAGE).parts[:1]
        for name in _imported_names(path)
        if name.split(".")[0] in ("starlette", "uvicorn")
    )
    assert not broken, broken


def _imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


#: How a dialect loads: read inside ``db`` only (the rest asks ``file_load``/``load_rows``).
LOADING_FIELDS = {
    "bulk_load",
    "rows_per_insert",
    "insert_by_unnest",
    "connection_is_cursor",
    "typed_values_as_text",
    "sorted_unique_check",
    "analyze_before_key_check",
    "swap_by_rename_table",
    "cancel_method",
    "autocommit_style",
    "native_driver",
}


def _outside_db() -> list[tuple[str, ast.AST]]:
    return [
        (name, ast.parse(path.read_text(), str(path)))
        for name, path in sorted(MODULES.items())
        if _stage(name) != "db"
    ]


def test_no_module_outside_db_reads_how_a_dialect_loads() -> None:
    broken = sorted(
        f"{name}:{node.lineno} reads .{node.attr}"
        for name, tree in _outside_db()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in LOADING_FIELDS
    )
    assert not broken, broken


def _engine_names() -> set[str]:
    from qarion_etl.db.engines import DIALECTS

    return {n for d in DIALECTS for n in d.names}


def _strings(node: ast.AST) -> set[str]:
    """The string constants ``node`` is or holds (a tuple, list or set of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value.lower()}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {s for e in node.elts for s in _strings(e)}
    return set()


def test_no_module_outside_db_compares_engine_names() -> None:
    engines = _engine_names()
    broken = sorted(
        f"{name}:{node.lineno} compares with {sorted(hits)}"
        for name, tree in _outside_db()
        for node in ast.walk(tree)
        if isinstance(node, (ast.Compare, ast.MatchValue))
        for hits in [
            {s for part in _compared(node) for s in _strings(part)} & engines,
        ]
        if hits
    )
    assert not broken, broken


def _compared(node: ast.Compare | ast.MatchValue) -> list[ast.AST]:
    if isinstance(node, ast.MatchValue):
        return [node.value]
    return [node.left, *node.comparators]


@pytest.mark.parametrize("stage", ["db", "run"])
def test_no_function_is_over_60_lines(stage: str) -> None:
    long = sorted(
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, path in MODULES.items()
        if _stage(name) == stage
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 60
    )
    assert not long, long


def test_only_the_cli_raises_usage_error_itself() -> None:
    """Outside ``cli``, a request that cannot be done is one of ``UsageError``'s typed
    subclasses, with fields, never a ``UsageError`` worded for the command line."""
    raised = sorted(
        f"{name}:{node.lineno}"
        for name, path in MODULES.items()
        if _stage(name) != "cli"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "UsageError"
    )
    assert not raised, raised
