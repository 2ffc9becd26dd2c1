"""``qarion-etl doctor`` and ``config show`` for each XCom backend, and project-local backends."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli, make_project

CONFIG = """\
[project]
name = "doc"

[engine]
url = "duckdb:///{root}/warehouse.duckdb"

[metadata]
url = "sqlite:///{root}/.qarion/metadata.db"

{credentials}
[xcom]
enabled = true
backend = "{backend}"

[xcom.backend_config]
{options}
"""


def project(tmp_path: Path, backend: str, options: str = "", credentials: str = "") -> Path:
    text = CONFIG.format(root=tmp_path, backend=backend, options=options, credentials=credentials)
    return make_project(tmp_path, config=text, example=False)


def text(result: object) -> str:
    return result.stdout + result.stderr  # type: ignore[attr-defined]


@pytest.fixture
def clean_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Project-local modules named ``backends`` must not leak between tests."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [m for m in sys.modules if m == "backends" or m.startswith("backends.")]:
        del sys.modules[name]


def test_database_backend_is_named_with_its_table(tmp_path: Path) -> None:
    result = cli("doctor", project=project(tmp_path, "database"))
    assert result.exit_code == 0, text(result)
    assert (
        "OK   xcom backend: qarion_etl.xcom.backends.database:DatabaseXComBackend at table "
        "qarion_xcom (write, read, clear: 1 removed)"
    ) in text(result)
    assert "OK   warehouse engine: duckdb at duckdb:///" in text(result)
    assert "OK   metadata database: sqlite at sqlite:///" in text(result)


def test_local_file_backend_names_its_folder_and_leaves_nothing(tmp_path: Path) -> None:
    result = cli("doctor", project=project(tmp_path, "local_file", 'base_path = "xcom"'))
    assert result.exit_code == 0, text(result)
    folder = (tmp_path / "xcom").resolve()
    assert f"LocalFileXComBackend at folder {folder} (write, read, clear: 1 removed)" in text(
        result
    )
    assert [p for p in folder.rglob("*")] == []


def test_offload_store_is_probed_too(tmp_path: Path) -> None:
    options = 'offload_threshold_bytes = 100\noffload_to = {type = "local_file", base_path = "big"}'
    result = cli("doctor", project=project(tmp_path, "database", options))
    assert result.exit_code == 0, text(result)
    big = (tmp_path / "big").resolve()
    assert f"values over 100 bytes to folder {big} (write, read, clear: 2 removed)" in text(result)
    assert [p for p in big.rglob("*") if p.is_file()] == []


@pytest.mark.s3
def test_s3_backend_with_a_credential_reference(
    tmp_path: Path, s3_bucket: str, s3_env: str
) -> None:
    creds = textwrap.dedent(
        """\
        [credentials.aws_creds]
        aws_access_key_id = "AKIDEXAMPLE"
        aws_secret_access_key = "doctor-secret-value"
        region_name = "us-east-1"
        """
    )
    options = (
        f'bucket = "{s3_bucket}"\nprefix = "ci/xcom"\n'
        f'credentials = "${{credential:aws_creds}}"\nendpoint_url = "{s3_env}"'
    )
    proj = project(tmp_path, "s3", options, creds)
    result = cli("doctor", project=proj)
    assert result.exit_code == 0, text(result)
    assert (
        f"qarion_etl.xcom.backends.s3:S3XComBackend at s3://{s3_bucket}/ci/xcom "
        f"(endpoint {s3_env}, region us-east-1) (write, read, clear: 1 removed)"
    ) in text(result)
    shown = cli("config", "show", project=proj)
    assert shown.exit_code == 0, text(shown)
    assert "doctor-secret-value" not in text(shown) and "S3XComBackend" in text(shown)


@pytest.mark.s3
def test_missing_bucket_exits_3_naming_the_bucket(tmp_path: Path, s3_env: str) -> None:
    options = f'bucket = "no-such-bucket-here"\nendpoint_url = "{s3_env}"'
    result = cli("doctor", project=project(tmp_path, "s3", options))
    assert result.exit_code == 3
    assert (
        "FAIL xcom backend: qarion_etl.xcom.backends.s3:S3XComBackend at s3://no-such-bucket-here/xcom"
    ) in text(result)
    assert "put on bucket 'no-such-bucket-here' failed: the bucket does not exist" in text(result)
    assert "Traceback" not in text(result)


def test_unreachable_endpoint_exits_3_fast_without_secrets(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = (
        f'bucket = "ci-bucket"\nendpoint_url = "http://127.0.0.1:{port}"\n'
        'credentials = {aws_access_key_id = "AKIDEXAMPLE", aws_secret_access_key = "inline-secret-1"}'
    )
    start = time.monotonic()
    result = cli("doctor", project=project(tmp_path, "s3", options))
    assert time.monotonic() - start < 20
    assert result.exit_code == 3
    assert f"cannot reach endpoint http://127.0.0.1:{port}" in text(result)
    assert "bucket 'ci-bucket'" in text(result) and "inline-secret-1" not in text(result)


def test_custom_backend_beside_the_config_is_imported_from_the_project_root(
    tmp_path: Path, clean_imports: None
) -> None:
    proj = project(tmp_path, "backends.my_xcom:ProjectXCom")
    (proj / "backends").mkdir()
    (proj / "backends" / "my_xcom.py").write_text(
        textwrap.dedent(
            """\
            from qarion_etl.xcom import BaseXCom


            class ProjectXCom(BaseXCom):
                \"\"\"Stores in the metadata database, like Airflow's BaseXCom.\"\"\"

                @staticmethod
                def serialize_value(value, key=None, task_id=None, dag_id=None, run_id=None, **kw):
                    return BaseXCom.serialize_value(value=value)
            """
        )
    )
    result = cli("doctor", project=proj)
    assert result.exit_code == 0, text(result)
    assert "OK   xcom backend: backends.my_xcom:ProjectXCom" in text(result)
    shown = cli("config", "show", project=proj)
    assert "backends.my_xcom:ProjectXCom" in text(shown)


def test_custom_backend_that_cannot_load_exits_3(tmp_path: Path, clean_imports: None) -> None:
    result = cli("doctor", project=project(tmp_path, "backends.missing:Nope"))
    assert result.exit_code == 3
    assert "cannot load XCom backend 'backends.missing:Nope'" in text(result)
