"""What each task type accepts in ``[tasks.config]`` and ``[tasks.properties]``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TaskTypeSpec:
    required_config: frozenset[str]
    optional_config: frozenset[str]
    needs_target: bool = False

    @property
    def config_keys(self) -> frozenset[str]:
        return self.required_config | self.optional_config


SPECS: dict[str, TaskTypeSpec] = {
    "ingestion": TaskTypeSpec(
        required_config=frozenset({"path", "format"}),
        optional_config=frozenset(
            {"delimiter", "quote", "escape", "header", "encoding", "null_values"}
        ),
        needs_target=True,
    ),
    "transformation": TaskTypeSpec(
        required_config=frozenset({"sql"}),
        optional_config=frozenset(),
    ),
}

FORMATS = ("csv", "jsonl", "parquet")
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
