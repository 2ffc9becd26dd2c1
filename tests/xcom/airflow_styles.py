"""Custom XCom backends written the way Airflow users write them, ported to qarion-etl.

Each class is what a public Airflow backend of its style looks like after the port the
README describes: the import of ``BaseXCom`` changes, and ``S3Hook`` becomes a boto3
client (Airflow's ``conf`` becomes environment variables here). Objects go to moto's S3
server (``XCOM_TEST_ENDPOINT``, bucket ``XCOM_TEST_BUCKET``). The tests copy this file
into a project's ``backends/`` folder and name a class in ``[xcom].backend``.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from typing import Any

import boto3

from qarion_etl.xcom import BaseXCom  # was: from airflow.models.xcom import BaseXCom

PREFIX = "xcom-objects"


def _s3() -> Any:  # was: S3Hook(aws_conn_id=...).get_conn()
    return boto3.client(
        "s3", endpoint_url=os.environ["XCOM_TEST_ENDPOINT"], region_name="us-east-1"
    )


def _bucket() -> str:
    return os.environ["XCOM_TEST_BUCKET"]


def _upload(name: str, value: Any) -> str:
    key = f"{PREFIX}/{name}.json"
    _s3().put_object(Bucket=_bucket(), Key=key, Body=json.dumps(value).encode())
    return f"s3://{_bucket()}/{key}"


def _download(url: str) -> Any:
    key = url.removeprefix(f"s3://{_bucket()}/")
    return json.loads(_s3().get_object(Bucket=_bucket(), Key=key)["Body"].read())


def _delete(url: Any) -> None:
    if isinstance(url, str) and url.startswith("s3://"):
        _s3().delete_object(Bucket=_bucket(), Key=url.removeprefix(f"s3://{_bucket()}/"))


class OneArgument(BaseXCom):
    """The oldest tutorial shape: ``serialize_value(value)`` and nothing else."""

    @staticmethod
    def serialize_value(value):  # type: ignore[no-untyped-def, override]
        return BaseXCom.serialize_value(value=_upload(uuid.uuid4().hex, value))

    @staticmethod
    def deserialize_value(result):  # type: ignore[no-untyped-def]
        return _download(BaseXCom.deserialize_value(result))


class AirflowKeywords(BaseXCom):
    """Airflow 2.4+'s keyword names and ``**kwargs``; a purge that deletes the object."""

    @staticmethod
    def serialize_value(  # type: ignore[no-untyped-def, override]
        value, key=None, task_id=None, dag_id=None, run_id=None, map_index=None, **kwargs
    ):
        name = f"{dag_id}/{run_id}/{task_id}/{key}.{map_index}.{uuid.uuid4().hex[:8]}"
        return BaseXCom.serialize_value(value=_upload(name, value))

    @staticmethod
    def deserialize_value(result):  # type: ignore[no-untyped-def]
        return _download(BaseXCom.deserialize_value(result))

    @staticmethod
    def purge(xcom, session):  # type: ignore[no-untyped-def]
        # As common-io's XComObjectStorageBackend does: the row's value is the reference.
        if isinstance(xcom.value, str):
            _delete(xcom.value)


class SuperCalls(BaseXCom):
    """Classmethod hooks that hand over to the base with ``super()``."""

    @classmethod
    def serialize_value(cls, value, *, key=None, task_id=None, **kwargs):  # type: ignore[no-untyped-def, override]
        return super().serialize_value(value=_upload(f"{task_id}/{key}/{uuid.uuid4().hex}", value))

    @classmethod
    def deserialize_value(cls, result):  # type: ignore[no-untyped-def, override]
        return _download(super().deserialize_value(result))

    @classmethod
    def purge(cls, xcom, session=None):  # type: ignore[no-untyped-def, override]
        _delete(BaseXCom.deserialize_value(xcom))


class RowStyle(AirflowKeywords):
    """Hooks written on Airflow's row: ``self`` is the stored XCom, ``super()`` works."""

    def orm_deserialize_value(self):  # type: ignore[no-untyped-def, override]
        ref = BaseXCom.deserialize_value(self)
        return f"object {ref} ({super().orm_deserialize_value()})"

    def deserialize_value(self):  # type: ignore[no-untyped-def, override]
        return _download(BaseXCom.deserialize_value(self))


class RequiredClear(AirflowKeywords):
    """Airflow 2.3+'s keyword-only ``clear``: it needs the task instance's identity."""

    cleared: list[dict[str, Any]] = []

    def clear(self, *, dag_id, task_id, run_id, map_index=None, session=None):  # type: ignore[no-untyped-def, override]
        RequiredClear.cleared.append(
            {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "map_index": map_index}
        )
        return super().clear(dag_id=dag_id, task_id=task_id, run_id=run_id)


class DataFrames(BaseXCom):
    """Astronomer's pandas tutorial: DataFrames go to S3 as CSV, everything else inline."""

    @staticmethod
    def serialize_value(value, key=None, task_id=None, dag_id=None, run_id=None, **kwargs):  # type: ignore[no-untyped-def, override]
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            key_name = f"{PREFIX}/{dag_id}/{run_id}/{task_id}/{key}_{uuid.uuid4().hex[:8]}.csv"
            _s3().put_object(
                Bucket=_bucket(), Key=key_name, Body=value.to_csv(index=False).encode()
            )
            value = f"s3://{_bucket()}/{key_name}"
        return BaseXCom.serialize_value(value=value)

    @staticmethod
    def deserialize_value(result):  # type: ignore[no-untyped-def]
        import pandas as pd

        value = BaseXCom.deserialize_value(result)
        if isinstance(value, str) and value.startswith("s3://") and value.endswith(".csv"):
            key = value.removeprefix(f"s3://{_bucket()}/")
            body = _s3().get_object(Bucket=_bucket(), Key=key)["Body"].read()
            return pd.read_csv(io.BytesIO(body))
        return value

    def orm_deserialize_value(self):  # type: ignore[no-untyped-def, override]
        value = BaseXCom.deserialize_value(self)
        if isinstance(value, str) and value.endswith(".csv"):
            return f"DataFrame at {value}"
        return super().orm_deserialize_value()

    @staticmethod
    def purge(xcom, session):  # type: ignore[no-untyped-def]
        _delete(xcom.value)
