"""The schema keys of one ``[[tasks]]`` table, and the column grammar ``[input]`` shares.

An ingestion may carry its own ``primary_key`` and ``columns`` (written as in ``[input]``,
which stays the default of the flow's other ingestions). A transformation may document
its ``columns`` (``name`` and ``description`` only: its types are the query's), choose how
it is ``materialized`` and, when incremental, the ``unique_key`` it upserts on. Each
problem is reported through the ``FlowParser`` with the task and the key's line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from qarion_etl.definitions.flow import ColumnSpec
from qarion_etl.definitions.task_types import SCHEMA_TYPE_ALIASES, SCHEMA_TYPES
from qarion_etl.errors import did_you_mean


class FlowParser(Protocol):
    """What these checks need of ``flow_parser.FlowParser``: a place for problems."""

    def problem(self, message: str, line: int | None = None, task_id: str | None = None) -> None:
        """Record one problem of the file."""

    def _unknown(
        self,
        table: Mapping[str, Any],
        allowed: set[str] | frozenset[str],
        what: str,
        line_of: Callable[[str], int | None],
        task_id: str | None = None,
    ) -> None:
        """Record a problem for each key of ``table`` not in ``allowed``."""


COLUMN_KEYS = frozenset({"name", "schema_type", "required", "description"})
#: What a transformation's ``columns`` may say: it documents, the query decides the types.
DOC_COLUMN_KEYS = frozenset({"name", "description"})
MATERIALIZATIONS = ("table", "view", "ephemeral", "incremental")


@dataclass(frozen=True, slots=True)
class TaskSchema:
    """What ``parse_task_schema`` found in one ``[[tasks]]`` table."""

    primary_key: tuple[str, ...] | None = None
    columns: tuple[ColumnSpec, ...] | None = None
    unique_key: tuple[str, ...] = ()


def parse_key(
    parser: FlowParser, raw: Any, where: str, line: int | None, task_id: str | None = None
) -> list[str]:
    """A key given as one column name or a list of them; ``[]`` (with a problem) if neither."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(c, str) and c for c in raw):
        parser.problem(f"{where} must be a list of column names", line, task_id)
        return []
    return list(raw)


def parse_columns(
    parser: FlowParser,
    raw_cols: Any,
    where: str,
    line: int | None,
    task_id: str | None = None,
    *,
    typed: bool = True,
) -> list[ColumnSpec]:
    """``columns = [{name, schema_type, required, description}, …]`` (``typed=False``: only
    ``name`` and ``description``)."""
    if not isinstance(raw_cols, list):
        parser.problem(f"{where} must be a list of tables", line, task_id)
        return []
    allowed = COLUMN_KEYS if typed else DOC_COLUMN_KEYS
    columns: list[ColumnSpec] = []
    seen: set[str] = set()
    for col in raw_cols:
        if not isinstance(col, dict) or not isinstance(col.get("name"), str) or not col["name"]:
            parser.problem(f"each column needs a 'name', got {col!r}", line, task_id)
            continue
        name = col["name"]
        parser._unknown(col, allowed, f"column '{name}'", lambda _k: line, task_id)
        if name in seen:
            parser.problem(f"column '{name}' is declared twice", line, task_id)
        seen.add(name)
        columns.append(_column(parser, col, line, task_id) if typed else _doc_column(col))
    return columns


def _column(
    parser: FlowParser, col: Mapping[str, Any], line: int | None, task_id: str | None
) -> ColumnSpec:
    name = col["name"]
    stype = str(col.get("schema_type", "string")).lower()
    stype = SCHEMA_TYPE_ALIASES.get(stype, stype)
    if stype not in SCHEMA_TYPES:
        parser.problem(
            f"column '{name}': unknown schema_type '{col.get('schema_type')}'"
            f"{did_you_mean(stype, SCHEMA_TYPES)} (known: {', '.join(SCHEMA_TYPES)})",
            line,
            task_id,
        )
    required = col.get("required", False)
    if not isinstance(required, bool):
        parser.problem(f"column '{name}': 'required' must be true or false", line, task_id)
        required = False
    return ColumnSpec(name, stype, required, _description(parser, col, line, task_id))


def _doc_column(col: Mapping[str, Any]) -> ColumnSpec:
    description = col.get("description")
    return ColumnSpec(
        col["name"], description=description if isinstance(description, str) else None
    )


def _description(
    parser: FlowParser, col: Mapping[str, Any], line: int | None, task_id: str | None
) -> str | None:
    description = col.get("description")
    if description is not None and not isinstance(description, str):
        parser.problem(f"column '{col['name']}': 'description' must be a string", line, task_id)
        return None
    return description


def check_key_columns(
    parser: FlowParser,
    key: list[str],
    columns: list[ColumnSpec] | tuple[ColumnSpec, ...],
    where: str,
    line: int | None,
    task_id: str | None = None,
) -> None:
    """Every column of ``key`` must be declared, when columns are declared at all."""
    names = {c.name for c in columns}
    if not names:
        return
    for name in key:
        if name not in names:
            parser.problem(
                f"primary_key column '{name}' is not among {where}{did_you_mean(name, names)}",
                line,
                task_id,
            )


def parse_task_schema(
    parser: FlowParser,
    raw: Mapping[str, Any],
    kl: Any,
    task_id: str,
    flow_columns: tuple[ColumnSpec, ...],
) -> TaskSchema:
    """A task's ``primary_key``, ``columns`` and ``unique_key``, checked for its type."""
    ttype = raw.get("type")
    pk: list[str] | None = None
    columns: list[ColumnSpec] | None = None
    if "primary_key" in raw:
        if ttype != "ingestion":
            parser.problem("only an ingestion task has a 'primary_key'", kl("primary_key"), task_id)
        pk = parse_key(parser, raw["primary_key"], "'primary_key'", kl("primary_key"), task_id)
    if "columns" in raw:
        typed = ttype == "ingestion"
        if ttype not in ("ingestion", "transformation"):
            parser.problem(
                "only ingestion and transformation tasks have 'columns'", kl("columns"), task_id
            )
        columns = parse_columns(
            parser, raw["columns"], "'columns'", kl("columns"), task_id, typed=typed
        )
    if pk and ttype == "ingestion":
        where = "the task's columns" if columns is not None else "[input].columns"
        check_key_columns(
            parser,
            pk,
            columns if columns is not None else flow_columns,
            where,
            kl("primary_key"),
            task_id,
        )
    unique_key: list[str] = []
    if "unique_key" in raw:
        unique_key = parse_key(parser, raw["unique_key"], "'unique_key'", kl("unique_key"), task_id)
    return TaskSchema(
        None if pk is None or ttype != "ingestion" else tuple(pk),
        None if columns is None else tuple(columns),
        tuple(unique_key),
    )


def check_materialized(
    parser: FlowParser,
    raw: Mapping[str, Any],
    materialized: str,
    kl: Any,
    pl: Any,
    task_id: str,
) -> str:
    """``materialized`` checked against the task's type, ``processing_type`` and ``unique_key``."""
    if materialized not in MATERIALIZATIONS:
        parser.problem(
            f"'materialized' must be one of {', '.join(map(repr, MATERIALIZATIONS))}, "
            f"got {materialized!r}{did_you_mean(materialized, MATERIALIZATIONS)}",
            kl("materialized"),
            task_id,
        )
        return "table"
    if "materialized" in raw and raw.get("type") != "transformation":
        parser.problem("only a transformation task has 'materialized'", kl("materialized"), task_id)
        return "table"
    if materialized in ("view", "incremental") and not raw.get("target_dataset_id"):
        parser.problem(
            f"materialized = {materialized!r} needs 'target_dataset_id'",
            kl("materialized"),
            task_id,
        )
    props = raw.get("properties")
    given = props.get("processing_type") if isinstance(props, dict) else None
    ptype = str(given).upper() if given is not None else None
    incremental = materialized == "incremental"
    if ptype is not None and "materialized" in raw and (ptype == "INCREMENTAL") != incremental:
        parser.problem(
            f"materialized = {materialized!r} and processing_type = {given!r} disagree "
            f'(materialized = "incremental" is processing_type = "INCREMENTAL")',
            pl("processing_type"),
            task_id,
        )
    if "unique_key" in raw and not (incremental or ptype == "INCREMENTAL"):
        parser.problem(
            "'unique_key' needs materialized = \"incremental\"", kl("unique_key"), task_id
        )
    return materialized
