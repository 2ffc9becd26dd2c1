from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qarion_etl.db_service import DatabaseService, mask_url, resolve_url
from qarion_etl.errors import StoreUnavailable


def test_mask_url() -> None:
    assert (
        mask_url("postgresql+psycopg://u:s3cret@h:5432/db")
        == "postgresql+psycopg://u:***@h:5432/db"
    )
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_relative_paths_resolve_against_the_root(tmp_path: Path) -> None:
    url = resolve_url("sqlite:///.qarion/metadata.db", tmp_path)
    assert url == f"sqlite:///{tmp_path}/.qarion/metadata.db"
    assert (tmp_path / ".qarion").is_dir()
    assert resolve_url("sqlite:///:memory:", tmp_path) == "sqlite:///:memory:"
    assert resolve_url("duckdb:////abs/w.duckdb", tmp_path) == "duckdb:////abs/w.duckdb"


def test_quoting_and_namespaces(engine_url: str) -> None:
    db = DatabaseService(engine_url)
    try:
        q = db.quote('we"ird')
        assert q != 'we"ird' and "we" in q
        name = db.qualified("ns", "tbl")
        if db.dialect.has_schemas:
            assert name == f"{db.quote('ns')}.{db.quote('tbl')}"
        else:
            assert name == db.quote("ns__tbl")
        db.check()
    finally:
        db.close()


def test_unreachable_server_is_store_unavailable() -> None:
    db = DatabaseService("postgresql+psycopg://postgres@127.0.0.1:1/none", what="metadata database")
    with pytest.raises(StoreUnavailable) as exc:
        db.check()
    assert exc.value.exit_code == 3
    assert "metadata database" in str(exc.value) and "127.0.0.1:1" in str(exc.value)


def test_missing_driver_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="nosuchdialect"):
        DatabaseService("nosuchdialect://x")


def test_password_never_in_the_error() -> None:
    db = DatabaseService("postgresql+psycopg://postgres:hunter2secret@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable) as exc:
        db.check()
    assert "hunter2secret" not in str(exc.value)


def test_duckdb_file_in_use_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys,time; c=duckdb.connect({str(path)!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        db = DatabaseService(f"duckdb:///{path}", what="warehouse")
        with pytest.raises(StoreUnavailable) as exc:
            db.check()
        assert "in use by another process" in str(exc.value)
        assert exc.value.exit_code == 3
    finally:
        holder.kill()
        holder.wait()
