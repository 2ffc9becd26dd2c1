"""Custom backends: an Airflow backend ported by changing its imports, and hook calling rules."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.definitions.config import XComConfig
from qarion_etl.errors import UsageError, XComValueError
from qarion_etl.xcom import BaseXCom, XComService
from qarion_etl.xcom.registry import create_backend
from tests.conftest import unique_name

# An Airflow custom XCom backend in the documented shape (BaseXCom subclass, static
# serialize/deserialize with Airflow's keyword names, reading result.value, ending with
# BaseXCom.serialize_value(value=...)). The only change from the Airflow original is the
# import line; a folder stands in for the S3 bucket that S3Hook wrote to.
AIRFLOW_BACKEND = """
import json
import os
import uuid

from qarion_etl.xcom import BaseXCom  # was: from airflow.models.xcom import BaseXCom

STORE = os.environ["REF_XCOM_STORE"]


class RefXComBackend(BaseXCom):
    PREFIX = "xcom_ref://"

    @staticmethod
    def serialize_value(value, key=None, task_id=None, dag_id=None, run_id=None, map_index=None, **kwargs):
        name = f"{dag_id}__{run_id}__{task_id}__{key}__{map_index}__{uuid.uuid4().hex}.json"
        with open(os.path.join(STORE, name), "w") as f:
            json.dump(value, f)
        reference = RefXComBackend.PREFIX + name
        return BaseXCom.serialize_value(value=reference)

    @staticmethod
    def deserialize_value(result):
        result = BaseXCom.deserialize_value(result)
        if isinstance(result, str) and result.startswith(RefXComBackend.PREFIX):
            with open(os.path.join(STORE, result.replace(RefXComBackend.PREFIX, ""))) as f:
                return json.load(f)
        return result

    def orm_deserialize_value(self):
        return f"stored in the ref store: {self.value}"
"""


@pytest.fixture
def project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("REF_XCOM_STORE", str(store))
    return tmp_path


@pytest.fixture
def ported(project_root: Path) -> Iterator[BaseXCom]:
    module = unique_name("ref_xcom")
    (project_root / "backends").mkdir()
    (project_root / "backends" / f"{module}.py").write_text(AIRFLOW_BACKEND)
    db = DatabaseService(f"sqlite:///{project_root / 'meta.db'}")
    cfg = XComConfig(True, f"backends.{module}.RefXComBackend", MappingProxyType({}), 1 << 20)
    backend = create_backend(cfg, db, root=project_root, namespace="qarion")
    yield backend
    backend.close()
    db.close()


def test_airflow_backend_ports_by_changing_imports(ported: BaseXCom, project_root: Path) -> None:
    svc = XComService(ported, default_flow_id="daily", default_dag_run_id="run_1")
    svc.push("extract", {"rows": 3, "files": ["a.csv"]}, key="manifest")
    assert svc.pull("extract", key="manifest") == {"rows": 3, "files": ["a.csv"]}
    assert svc.pull_many(["extract", "none"], key="manifest") == {
        "extract": {"rows": 3, "files": ["a.csv"]},
        "none": None,
    }
    files = list((project_root / "store").iterdir())
    assert len(files) == 1
    assert files[0].name.startswith(
        "daily__run_1__extract__manifest__-1__"
    )  # dag_id, run_id, map_index
    assert json.loads(files[0].read_text()) == {"rows": 3, "files": ["a.csv"]}
    assert ported.db_service is not None
    with ported.db_service.connect() as conn:
        stored = conn.exec_driver_sql("SELECT value, value_type FROM qarion_xcom").one()
    assert stored == (json.dumps("xcom_ref://" + files[0].name), "json")
    [entry] = svc.list()
    assert entry.preview.startswith('stored in the ref store: "xcom_ref://daily__run_1')


def test_typed_push_through_an_override_keeps_checks(ported: BaseXCom) -> None:
    svc = XComService(ported, default_flow_id="daily")
    with pytest.raises(XComValueError, match="does not fit XCom type 'integer'"):
        svc.push("t", "nope", value_type="integer")
    svc.push("t", 5, value_type="integer")
    assert svc.pull("t") == 5


class OursStyle(BaseXCom):
    """Our keyword names, a classmethod, an override of clear that sees every call."""

    seen: list[dict[str, Any]] = []
    cleared: list[dict[str, Any]] = []

    @classmethod
    def serialize_value(
        cls,
        value: Any,
        *,
        key: str,
        task_id: str,
        flow_id: str,
        dag_run_id: str | None,
        batch_id: int | None,
    ) -> str:
        cls.seen.append(
            {
                "key": key,
                "task_id": task_id,
                "flow_id": flow_id,
                "dag_run_id": dag_run_id,
                "batch_id": batch_id,
            }
        )
        return BaseXCom.serialize_value(value=[value])

    @staticmethod
    def deserialize_value(record: Any) -> Any:
        return BaseXCom.deserialize_value(record)[0]

    def clear(
        self, *, flow_id: str | None = None, task_id: str | None = None, **filters: Any
    ) -> int:
        self.cleared.append({"flow_id": flow_id, "task_id": task_id, **filters})
        return super().clear(flow_id=flow_id, task_id=task_id, **filters)


class KeyOnlyClear(BaseXCom):
    def clear(self, *, flow_id: str | None = None, task_id: str | None = None) -> int:  # type: ignore[override]
        return super().clear(flow_id=flow_id, task_id=task_id)


def test_hooks_get_exactly_the_keywords_they_declare(tmp_path: Path) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'm.db'}")
    backend = OursStyle(db)
    svc = XComService(backend, default_flow_id="f", default_batch_id=2)
    svc.push("t", {"a": 1}, key="k", dag_run_id="r")
    assert OursStyle.seen == [
        {"key": "k", "task_id": "t", "flow_id": "f", "dag_run_id": "r", "batch_id": 2}
    ]
    assert svc.pull("t", key="k") == {"a": 1}
    assert svc.clear(task_id="t", batch_id=2) == 1
    assert OursStyle.cleared == [{"flow_id": "f", "task_id": "t", "batch_id": 2}]
    backend.close()
    db.close()


def test_clear_filter_the_override_cannot_apply_is_refused(tmp_path: Path) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'm.db'}")
    backend = KeyOnlyClear(db)
    svc = XComService(backend, default_flow_id="f")
    svc.push("t", 1, key="a")
    svc.push("t", 2, key="b")
    with pytest.raises(UsageError, match="cannot filter by key"):
        svc.clear(task_id="t", key="a")
    assert svc.pull("t", key="b") == 2
    assert svc.clear(task_id="t") == 2
    backend.close()
    db.close()


def test_failing_hook_is_a_value_error_naming_task_and_key(tmp_path: Path) -> None:
    class Broken(BaseXCom):
        @staticmethod
        def serialize_value(value: Any, **kwargs: Any) -> str:
            raise OSError("bucket unreachable")

    svc = XComService(
        Broken(DatabaseService(f"sqlite:///{tmp_path / 'm.db'}")), default_flow_id="f"
    )
    with pytest.raises(XComValueError) as err:
        svc.push("t", 1, key="k")
    assert "task 't': key 'k'" in str(err.value) and "OSError: bucket unreachable" in str(err.value)


def test_import_of_the_package_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qarion_etl.xcom, qarion_etl.xcom.registry;"
        "heavy = [m for m in ('sqlalchemy', 'boto3', 'duckdb', 'jinja2', 'networkx') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert out.stdout.strip() == ""


class AirflowListing(BaseXCom):
    """Airflow's common listing hook: the full value, read from the row."""

    def orm_deserialize_value(self):  # type: ignore[no-untyped-def, override]
        return BaseXCom.deserialize_value(self)


class RowSuper(BaseXCom):
    def orm_deserialize_value(self):  # type: ignore[no-untyped-def, override]
        return f"<{super().orm_deserialize_value()}>"


@pytest.mark.parametrize("cls", [AirflowListing, RowSuper])
def test_listing_hooks_get_the_stored_record_and_may_call_super(
    tmp_path: Path, cls: type[BaseXCom]
) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'm.db'}")
    svc = XComService(cls(db), default_flow_id="f")
    long = {"text": "x" * 500, "n": 1}
    svc.push("t", long)
    [entry] = svc.list()
    if cls is AirflowListing:
        assert entry.preview == long  # the whole stored text reached the hook
    else:
        assert entry.preview.startswith('<{"text":"xxx') and entry.preview.endswith("…>")
    svc.close()
    db.close()


class Purging(BaseXCom):
    purged: list[tuple[str, str, Any]] = []

    @staticmethod
    def purge(xcom: Any, session: Any) -> None:
        Purging.purged.append((xcom.task_id, xcom.key, xcom.value))


def test_purge_is_called_before_a_value_is_replaced_or_removed(tmp_path: Path) -> None:
    import datetime as dt

    Purging.purged.clear()
    db = DatabaseService(f"sqlite:///{tmp_path / 'm.db'}")
    svc = XComService(Purging(db), default_flow_id="f")
    svc.push("t", "first", key="k")
    assert Purging.purged == []
    svc.push("t", "second", key="k")  # the same identity: the old value is purged
    assert Purging.purged == [("t", "k", "first")]
    svc.push("t", "other run", key="k", dag_run_id="r2")  # another identity: nothing
    with svc.batch():
        svc.push("u", {"ref": "s3://b/u"})
        svc.push("u", {"ref": "s3://b/u2"})  # replaced inside one batch: nothing stored yet
    assert len(Purging.purged) == 1
    assert svc.clear(older_than=dt.timedelta(days=1)) == 0  # nothing is that old
    assert len(Purging.purged) == 1
    assert svc.clear(task_id="t") == 2
    assert sorted(Purging.purged[1:]) == [("t", "k", "other run"), ("t", "k", "second")]
    assert svc.clear() == 1 and Purging.purged[-1] == ("u", "return_value", {"ref": "s3://b/u2"})
    svc.close()
    db.close()


def test_a_clear_that_needs_filters_is_a_usage_error_naming_them(tmp_path: Path) -> None:
    class NeedsRun(BaseXCom):
        def clear(self, *, dag_id, task_id, run_id, map_index=None, session=None):  # type: ignore[no-untyped-def, override]
            return super().clear(dag_id=dag_id, task_id=task_id, run_id=run_id)

    class Fails(BaseXCom):
        def clear(self, **filters: Any) -> int:
            raise RuntimeError("store is read-only")

    db = DatabaseService(f"sqlite:///{tmp_path / 'm.db'}")
    svc = XComService(NeedsRun(db), default_flow_id="f")
    svc.push("t", 1, dag_run_id="r", batch_id=3)
    with pytest.raises(UsageError, match=r"needs dag_run_id and task_id$") as exc:
        svc.clear()
    # The library names the filters; the command line names its options for them.
    from qarion_etl.cli.wording import cli_message

    assert cli_message(exc.value).endswith(
        "needs dag_run_id and task_id: narrow the clear with --run, --task"
    )
    assert svc.clear(task_id="t", dag_run_id="r", batch_id=3) == 1  # the batch is implied
    with pytest.raises(
        XComValueError, match="Fails.clear\\(\\) failed: RuntimeError: store is read-only"
    ):
        XComService(Fails(db), default_flow_id="f").clear()
    db.close()


def test_a_listing_hook_that_hands_back_bytes_lists_a_hex_preview(tmp_path: Path) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'm.db'}")
    svc = XComService(AirflowListing(db), default_flow_id="f")
    svc.push("t", b"\x00\xffabc")
    [entry] = svc.list()
    assert entry.preview == "<binary 5 bytes> 00ff616263"
    assert entry.to_dict()["preview"] == "<binary 5 bytes> 00ff616263"
