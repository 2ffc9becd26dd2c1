"""The XCom table's definition: its columns, indexes and the rule for its name.

Described once (``db.schema.TableSpec``) and created by ``DatabaseService.create_tables``;
the layout is documented in ``qarion_etl.xcom.backends.database``.
"""

from __future__ import annotations

import hashlib
import re

from qarion_etl.db.schema import Column, TableSpec
from qarion_etl.errors import ConfigError
from qarion_etl.xcom.records import MAX_ID_LENGTH

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")


def check_table_name(name: str) -> None:
    """Refuse a table name that is not a plain identifier (it names a table in SQL).

    Raises:
        ConfigError: the name is not letters, digits and ``_``, or longer than 60.
    """
    if not _TABLE_NAME.match(name):
        raise ConfigError(
            f"XCom table name {name!r} must be a plain identifier of at most 60 characters"
        )


def table_spec(name: str) -> TableSpec:
    """The XCom table's definition."""
    check_table_name(name)
    ident = f"str:{MAX_ID_LENGTH}"
    return TableSpec(
        name,
        (
            Column("identity", "str:64", primary_key=True),
            Column("flow_id", ident, nullable=False),
            Column("task_id", ident, nullable=False),
            Column("key", ident, nullable=False),
            Column("dag_run_id", ident),
            Column("batch_id", "bigint"),
            Column("value_type", "str:16", nullable=False),
            Column("value", "longtext", nullable=False),
            Column("size", "int", nullable=False),
            Column("pushed_ns", "bigint", nullable=False),
            Column("created_at", "datetime", nullable=False),  # for people; order by pushed_ns
        ),
        indexes=(
            (_index_name(name, "lookup"), ("task_id", "key", "pushed_ns")),
            (_index_name(name, "run"), ("flow_id", "dag_run_id")),
            (_index_name(name, "pushed"), ("pushed_ns",)),
        ),
        dialect_options={
            "mysql": {"engine": "InnoDB", "charset": "utf8mb4", "collate": "utf8mb4_bin"}
        },
    )


def _index_name(table: str, what: str) -> str:
    name = f"ix_{table}_{what}"
    if len(name) > 60:
        name = f"ix_{table[:40]}_{hashlib.sha256(table.encode()).hexdigest()[:8]}_{what}"
    return name
