"""The import paths the seed page and the README publish, and ``__all__`` of each public module.

A reorganisation of the package must keep every one of these working: the seed page's
snippet imports ``qarion_etl.xcom``, ``qarion_etl.xcom.backends.database`` and
``qarion_etl.db_service``; the README also shows ``qarion_etl.dag.build_dag``,
``qarion_etl.project.Project`` and ``qarion_etl.runner.FlowRunner``/``RunOptions``.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

#: module -> names a user may import from it (what the docs show, at least).
PUBLISHED = {
    "qarion_etl.xcom": [
        "BaseXCom",
        "MISSING",
        "XComNotFound",
        "XComService",
        "XComValueError",
        "XComValueType",
    ],
    "qarion_etl.xcom.backends.database": ["DatabaseXComBackend"],
    "qarion_etl.db_service": ["DatabaseService"],
    "qarion_etl.dag": ["build_dag"],
    "qarion_etl.project": ["Project"],
    "qarion_etl.runner": ["FlowRunner", "RunOptions"],
    "qarion_etl.airflow": ["dags_from_project", "flow_task_group", "project_pools"],
}


@pytest.mark.parametrize(("module", "names"), sorted(PUBLISHED.items()))
def test_published_names_import(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name} is published but missing"
        assert name in mod.__all__, f"{module}.{name} is published but not in __all__"


@pytest.mark.parametrize("module", sorted(PUBLISHED))
def test_all_is_sorted_complete_and_resolves(module: str) -> None:
    """httpx's habit: ``__all__`` lists exactly the public names, sorted."""
    mod = importlib.import_module(module)
    exported = list(mod.__all__)
    assert exported == sorted(exported), f"{module}.__all__ is not sorted"
    assert len(exported) == len(set(exported)), f"{module}.__all__ repeats a name"
    for name in exported:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which does not exist"
    # Every class and function defined in the module itself is exported.
    public = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module
    }
    missing = sorted(public - set(exported))
    assert not missing, f"{module} defines public names not in __all__: {missing}"


def test_seed_page_classes_are_the_working_ones() -> None:
    """The faces hand out the real classes, not copies."""
    from qarion_etl.xcom import BaseXCom
    from qarion_etl.xcom.backends.database import DatabaseXComBackend

    assert issubclass(DatabaseXComBackend, BaseXCom)
    from qarion_etl.db_service import DatabaseService

    assert inspect.isclass(DatabaseService)


def test_importing_the_airflow_face_does_not_import_airflow() -> None:
    """A DAG file imports ``qarion_etl.airflow``; Airflow loads only when a builder runs."""
    import subprocess
    import sys

    code = "import sys, qarion_etl.airflow; print(any(m.split('.')[0] == 'airflow' for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
