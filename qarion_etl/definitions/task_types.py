"""What each task type accepts, and the checks of its ``[tasks.config]``.

The flow parser, validation and rendering ask a ``TaskType`` (``task_type(name)``) instead
of comparing type names: which config keys it takes and needs, whether it writes a
target, whether its ``config.sql`` is a template. A new task type is one entry in
``TASK_TYPES`` here and one implementation in ``qarion_etl.tasks`` (a test keeps the two
lists equal). Nothing here imports engine code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qarion_etl.errors import did_you_mean

#: Reports one problem of a task's config: ``(message, config key)``.
ConfigProblem = Callable[[str, str], None]

FORMATS = ("csv", "jsonl", "parquet")
#: What an ingestion does with bad input rows (``on_bad_rows``), the default first.
BAD_ROW_POLICIES = ("fail", "skip", "quarantine")
PROCESSING_TYPES = ("FULL_REFRESH", "INCREMENTAL")
SCHEMA_TYPES = ("string", "integer", "float", "decimal", "boolean", "date", "timestamp")
PROPERTY_KEYS = frozenset({"operation", "target_table_type", "processing_type"})

SCHEMA_TYPE_ALIASES = {
    "str": "string",
    "text": "string",
    "varchar": "string",
    "int": "integer",
    "bigint": "integer",
    "double": "float",
    "number": "float",
    "real": "float",
    "numeric": "decimal",
    "bool": "boolean",
    "datetime": "timestamp",
}


def _no_checks(config: Mapping[str, Any], problem: ConfigProblem) -> None:
    """A type whose keys need no check beyond being known."""


def _check_ingestion(config: Mapping[str, Any], problem: ConfigProblem) -> None:
    fmt = config.get("format")
    if "format" in config and fmt not in FORMATS:
        problem(
            f"unknown format {fmt!r}{did_you_mean(str(fmt), FORMATS)} (known: {', '.join(FORMATS)})",
            "format",
        )
    policy = config.get("on_bad_rows", "fail")
    if policy not in BAD_ROW_POLICIES:
        problem(
            f"unknown on_bad_rows {policy!r}{did_you_mean(str(policy), BAD_ROW_POLICIES)} "
            f"(known: {', '.join(BAD_ROW_POLICIES)})",
            "on_bad_rows",
        )
    if "max_bad_rows" in config:
        limit = config["max_bad_rows"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            problem(
                f"'max_bad_rows' must be a whole number, 0 or more, got {limit!r}", "max_bad_rows"
            )
        elif policy == "fail":
            problem(
                '\'max_bad_rows\' needs on_bad_rows = "skip" or "quarantine" '
                '(with "fail", the default, any bad row fails the task)',
                "max_bad_rows",
            )


def _check_transformation(config: Mapping[str, Any], problem: ConfigProblem) -> None:
    if "sql" in config and not isinstance(config["sql"], str):
        problem("config 'sql' must be a string", "sql")


@dataclass(frozen=True, slots=True)
class TaskType:
    """What one task type accepts in ``[tasks.config]``."""

    name: str
    required_config: frozenset[str]
    optional_config: frozenset[str] = frozenset()
    needs_target: bool = False
    #: ``config.sql`` is a Jinja template (rendered by ``render``, checked by ``validate``).
    has_sql: bool = False
    check_config: Callable[[Mapping[str, Any], ConfigProblem], None] = _no_checks

    @property
    def config_keys(self) -> frozenset[str]:
        return self.required_config | self.optional_config


TASK_TYPES: dict[str, TaskType] = {
    "ingestion": TaskType(
        "ingestion",
        required_config=frozenset({"path", "format"}),
        optional_config=frozenset(
            {
                "delimiter",
                "quote",
                "escape",
                "header",
                "encoding",
                "null_values",
                "on_bad_rows",
                "max_bad_rows",
            }
        ),
        needs_target=True,
        check_config=_check_ingestion,
    ),
    "transformation": TaskType(
        "transformation",
        required_config=frozenset({"sql"}),
        has_sql=True,
        check_config=_check_transformation,
    ),
}


def task_type(name: str) -> TaskType | None:
    """The type called ``name``, or ``None`` for an unknown name."""
    return TASK_TYPES.get(name)
