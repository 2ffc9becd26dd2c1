"""The ``local_file`` backend beyond the contract: containment of hostile names, atomic
writes, writers in several processes, folder clean-up and the project-root base path."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from qarion_etl.errors import StoreUnavailable
from qarion_etl.xcom import XComService
from qarion_etl.xcom.backends.local_file import LocalFileXComBackend
from qarion_etl.xcom.registry import create_backend

HOSTILE = [
    "..",
    ".",
    "../../outside",
    "/etc/passwd",
    "a/../../b",
    "..\\..\\win",
    "C:\\temp",
    "_",
    "%2e%2e%2f",
    "~root",
    "ünïcødé ✓ 🚀",
    "CASE",
    "case",
    "line\nbreak",
    "x" * 250,
    "é" * 250,
    ".hidden",
    "trailing.",
    "con",
]


def _tree(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*"))


def test_hostile_task_ids_keys_and_runs_stay_inside_base_path(tmp_path: Path) -> None:
    project = tmp_path / "project"
    base = project / "xcom"
    svc = XComService(LocalFileXComBackend(base_path=base), default_flow_id="../flow")
    for i, name in enumerate(HOSTILE):
        svc.push(name, i, key=name, dag_run_id=name)
        svc.push("t", i, key=name, dag_run_id=name, batch_id=i)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]
    assert [p.name for p in project.iterdir()] == ["xcom"]
    for path in _tree(base):
        assert path.resolve().is_relative_to(base.resolve())
        assert len(path.name.encode()) <= 255 and path.name not in (".", "..")
    for i, name in enumerate(HOSTILE):
        assert svc.pull(name, key=name, dag_run_id=name) == i
        assert svc.pull("t", key=name, dag_run_id=name, batch_id=i) == i
    assert len(svc.list(limit=None)) == 2 * len(HOSTILE)
    assert svc.clear() == 2 * len(HOSTILE)
    assert _tree(base) == []


def test_files_are_one_json_document_each(tmp_path: Path) -> None:
    backend = LocalFileXComBackend(base_path=tmp_path)
    XComService(backend, default_flow_id="f").push("t", {"rows": 3}, dag_run_id="r", batch_id=2)
    (path,) = [p for p in _tree(tmp_path) if p.is_file()]
    doc = json.loads(path.read_text())
    assert path.relative_to(tmp_path).parts[:2] == ("f", "t")
    assert doc["meta"]["flow_id"] == "f" and doc["meta"]["batch_id"] == 2
    assert doc["meta"]["dag_run_id"] == "r" and json.loads(doc["value"]) == {"rows": 3}


def test_failed_write_keeps_the_old_value_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = XComService(LocalFileXComBackend(base_path=tmp_path), default_flow_id="f")
    svc.push("t", "old")

    def crash(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StoreUnavailable) as err:
        svc.push("t", "new")
    assert "No space left" in str(err.value) and err.value.exit_code == 3
    monkeypatch.undo()
    assert svc.pull("t") == "old"
    assert [p.name for p in _tree(tmp_path) if p.is_file() and p.name.startswith(".tmp")] == []


def test_stray_temp_files_are_ignored(tmp_path: Path) -> None:
    svc = XComService(LocalFileXComBackend(base_path=tmp_path), default_flow_id="f")
    svc.push("t", 1)
    folder = next(p for p in _tree(tmp_path) if p.is_file()).parent
    (folder / ".tmp-crashed.part").write_text('{"meta": {"flow_id"')
    assert svc.pull("t") == 1 and len(svc.list()) == 1


def test_listing_reads_only_the_head_of_big_values(tmp_path: Path) -> None:
    backend = LocalFileXComBackend(base_path=tmp_path)
    svc = XComService(backend, default_flow_id="f")
    big = {"pad": "z" * 900_000}
    svc.push("t", big)
    (entry,) = svc.list()
    assert (
        entry.size > 900_000
        and entry.preview.startswith('{"pad":"zzz')
        and len(entry.preview) <= 60
    )
    (light,) = backend.list_records(backend_query(), preview_chars=60)
    assert light.truncated and len(light.value) == 60
    assert svc.pull("t") == big


def backend_query() -> Any:
    from qarion_etl.xcom.records import XComQuery

    return XComQuery(flow_id="f")


def test_clear_removes_the_folders_it_emptied(tmp_path: Path) -> None:
    svc = XComService(LocalFileXComBackend(base_path=tmp_path / "x"), default_flow_id="f")
    svc.push("a", 1)
    svc.push("b", 2)
    svc.push("b", 3, flow_id="g")
    assert svc.clear(task_id="a") == 1
    assert sorted(str(p.relative_to(tmp_path / "x")) for p in _tree(tmp_path / "x") if p.is_dir()) == [
        "f", "f/b", "g", "g/b",
    ]  # fmt: skip
    assert svc.clear(flow_id="g") == 1 and svc.clear(flow_id="f") == 1
    assert _tree(tmp_path / "x") == []
    assert (tmp_path / "x").is_dir()  # base_path itself stays


def test_relative_base_path_is_under_the_project_root(tmp_path: Path) -> None:
    class Cfg:
        backend = "local_file"
        backend_config = {"base_path": "xcom"}
        max_value_bytes = 1 << 20

    backend = create_backend(Cfg(), None, root=tmp_path)
    assert isinstance(backend, LocalFileXComBackend)
    assert backend.base_path == (tmp_path / "xcom").resolve()
    assert backend.describe() == f"folder {(tmp_path / 'xcom').resolve()}"


def _writer(base: str, worker: int, n: int) -> int:
    svc = XComService(LocalFileXComBackend(base_path=base), default_flow_id="f")
    for i in range(n):
        svc.push(f"w{worker}", i, key=f"k{i}")
        svc.push("shared", {"worker": worker, "i": i}, key="same")  # one identity, many writers
        if i % 10 == 0:
            svc.clear(task_id="scratch")
            svc.push("scratch", i)
    return worker


def test_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    base = str(tmp_path / "xcom")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        done = pool.starmap(_writer, [(base, w, 60) for w in range(4)])
    assert sorted(done) == [0, 1, 2, 3]
    svc = XComService(LocalFileXComBackend(base_path=base), default_flow_id="f")
    for w in range(4):
        assert svc.pull_many([f"w{w}"], key="k59") == {f"w{w}": 59}
        assert len(svc.list(task_id=f"w{w}", limit=None)) == 60
    assert svc.pull("shared", key="same")["i"] == 59
    assert len(svc.list(task_id="shared", limit=None)) == 1
    files = [p for p in _tree(Path(base)) if p.is_file()]
    assert not [p for p in files if p.name.startswith(".tmp")]
    for path in files:
        json.loads(path.read_text())  # every file is whole
