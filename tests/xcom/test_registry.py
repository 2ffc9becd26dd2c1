"""Backend selection: built-in names, class paths, constructor options and load errors."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.definitions.config import XComConfig
from qarion_etl.errors import BackendLoadError, ConfigError
from qarion_etl.xcom import BaseXCom, XComService
from qarion_etl.xcom.backends.database import DatabaseXComBackend
from qarion_etl.xcom.backends.local_file import LocalFileXComBackend
from qarion_etl.xcom.backends.memory import MemoryXComBackend
from qarion_etl.xcom.registry import BUILTIN_BACKENDS, create_backend, resolve_backend_class
from tests.conftest import unique_name


def config(backend: str, **options: Any) -> XComConfig:
    return XComConfig(
        enabled=True,
        backend=backend,
        backend_config=MappingProxyType(options),
        max_value_bytes=4096,
    )


def write_module(root: Path, body: str) -> str:
    """A project-local module ``backends/<unique>.py``; returns its dotted name."""
    name = unique_name("xb")
    (root / "backends").mkdir(exist_ok=True)
    (root / "backends" / f"{name}.py").write_text(textwrap.dedent(body))
    return f"backends.{name}"


@pytest.fixture
def db(tmp_path: Path) -> Any:
    service = DatabaseService(f"sqlite:///{tmp_path / 'meta.db'}")
    yield service
    service.close()


def test_builtin_names() -> None:
    assert resolve_backend_class("database") is DatabaseXComBackend
    assert resolve_backend_class("memory") is MemoryXComBackend
    assert resolve_backend_class("local_file") is LocalFileXComBackend
    assert BUILTIN_BACKENDS["s3"] == "qarion_etl.xcom.backends.s3:S3XComBackend"
    assert (
        BUILTIN_BACKENDS["local_file"] == "qarion_etl.xcom.backends.local_file:LocalFileXComBackend"
    )


def test_both_class_path_spellings(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
        from qarion_etl.xcom import BaseXCom

        class Mine(BaseXCom):
            pass
    """,
    )
    colon = resolve_backend_class(f"{module}:Mine", root=tmp_path)
    dotted = resolve_backend_class(f"{module}.Mine", root=tmp_path)
    assert colon is dotted and colon.__name__ == "Mine" and issubclass(colon, BaseXCom)
    assert (
        resolve_backend_class("qarion_etl.xcom.backends.memory.MemoryXComBackend")
        is MemoryXComBackend
    )


@pytest.mark.parametrize(
    ("ref", "body", "expected"),
    [
        ("databse", None, "unknown XCom backend 'databse'; did you mean 'database'?"),
        ("no_such_pkg.mod:Cls", None, "module 'no_such_pkg' not found"),
        (
            "{m}:Missing",
            "from qarion_etl.xcom import BaseXCom\nclass Mine(BaseXCom): pass\n",
            "has no attribute 'Missing'",
        ),
        ("{m}:Mine", "class Mine: pass\n", "not a subclass of qarion_etl.xcom.BaseXCom"),
        ("{m}:helper", "def helper(): pass\n", "is function, not a subclass"),
        (
            "{m}:Mine",
            "import does_not_exist_anywhere\n",
            "importing '{m}' failed: ModuleNotFoundError",
        ),
        ("{m}:Mine", "raise RuntimeError('broken at import')\n", "RuntimeError: broken at import"),
        ("{m}:Mine", "def f(:\n", "SyntaxError"),
    ],
)
def test_load_errors_name_the_path_and_cause(
    tmp_path: Path, ref: str, body: str | None, expected: str
) -> None:
    module = write_module(tmp_path, body) if body is not None else "unused"
    ref = ref.format(m=module)
    with pytest.raises(BackendLoadError) as err:
        resolve_backend_class(ref, root=tmp_path)
    assert err.value.exit_code == 3
    assert f"'{ref}'" in str(err.value)
    assert expected.format(m=module) in str(err.value)


def test_create_backend_passes_options_and_limits(db: DatabaseService) -> None:
    backend = create_backend(config("database", table_name="custom_xcom"), db, namespace="ns")
    assert isinstance(backend, DatabaseXComBackend)
    assert backend.table_name == "custom_xcom" and backend.max_value_bytes == 4096
    default = create_backend(config("database"), db, namespace="ns")
    assert default.table_name == "ns_xcom"
    svc = XComService(default, default_flow_id="f")
    svc.push("t", "ok")
    with db.connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM ns_xcom").scalar() == '"ok"'
    default.close()


def test_unknown_backend_config_key_suggests(db: DatabaseService) -> None:
    with pytest.raises(ConfigError) as err:
        create_backend(config("database", tabel_name="x"), db)
    assert err.value.exit_code == 2
    assert "unknown option 'tabel_name'" in str(err.value) and "did you mean 'table_name'" in str(
        err.value
    )


def test_constructor_failure_is_a_load_error(tmp_path: Path, db: DatabaseService) -> None:
    module = write_module(
        tmp_path,
        """
        from qarion_etl.xcom import BaseXCom

        class Picky(BaseXCom):
            def __init__(self, db_service, *, bucket: str = ""):
                super().__init__(db_service)
                if not bucket:
                    raise ValueError("bucket is required")
    """,
    )
    with pytest.raises(BackendLoadError) as err:
        create_backend(config(f"{module}:Picky"), db, root=tmp_path)
    assert err.value.exit_code == 3
    assert f"{module}:Picky" in str(err.value) and "ValueError: bucket is required" in str(
        err.value
    )
    ok = create_backend(config(f"{module}:Picky", bucket="b"), db, root=tmp_path)
    assert type(ok).__name__ == "Picky"


def test_local_file_base_path_is_relative_to_the_project_root(tmp_path: Path) -> None:
    backend = create_backend(config("local_file", base_path="xcom"), None, root=tmp_path)
    assert isinstance(backend, LocalFileXComBackend)
    assert backend.base_path == (tmp_path / "xcom").resolve()
    XComService(backend, default_flow_id="f").push("t", 1)
    assert len(list((tmp_path / "xcom").rglob("*.json"))) == 1


def test_bad_table_name_is_a_config_error(db: DatabaseService) -> None:
    with pytest.raises(ConfigError, match="plain identifier"):
        create_backend(config("database", table_name="x; DROP TABLE y"), db)
