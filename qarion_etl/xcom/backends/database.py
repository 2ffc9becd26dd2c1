"""The ``database`` XCom backend: one table in the metadata database.

Table ``<namespace>_xcom`` (or ``table_name``)::

    identity    VARCHAR(64) PRIMARY KEY   sha256 of (flow, task, key, run, batch); a missing
                                          run or batch is part of it, so "no run" is one row
    flow_id, task_id, key, dag_run_id     VARCHAR(250)
    batch_id    BIGINT NULL
    value_type  VARCHAR(16)               json | string | integer | float | boolean | binary
    value       TEXT (LONGTEXT on MySQL)  JSON text, readable with a plain SELECT
    size        INTEGER                   bytes of value
    pushed_ns   BIGINT                    push time in ns: the newest push wins
    created_at  TIMESTAMP (UTC)           the same moment, for people

Indexes: ``(task_id, key, pushed_ns)`` for pulls, ``(flow_id, dag_run_id)`` for clears and listings,
``(pushed_ns)`` for listings and pruning. A push is one atomic upsert (``ON CONFLICT DO
UPDATE`` on SQLite, PostgreSQL and DuckDB; ``ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB).

Storage and speed: ``qarion_etl.xcom.sql_store``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qarion_etl.xcom.backends.offload import OffloadMixin

if TYPE_CHECKING:
    from qarion_etl.db.service import DatabaseService

__all__ = ["DatabaseXComBackend"]


class DatabaseXComBackend(OffloadMixin):
    """XComs in a table of the metadata database (the default backend).

    Args:
        db_service: the metadata database.
        table_name: table name; default ``<namespace>_xcom`` (``qarion_xcom``).
        namespace: prefix of the metadata tables; default ``qarion``.
        offload_threshold_bytes, offload_to: values larger than the threshold go to the
            object store ``offload_to`` names (see ``qarion_etl.xcom.backends.offload``).
        root: the project root, for a relative ``offload_to.base_path``.
    """

    def __init__(
        self,
        db_service: DatabaseService,
        *,
        table_name: str | None = None,
        namespace: str | None = None,
        offload_threshold_bytes: int | None = None,
        offload_to: Mapping[str, Any] | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(db_service, table_name=table_name, namespace=namespace)
        self.configure_offload(offload_threshold_bytes, offload_to, root=root)
