"""The models of a flow file: ``Flow``, ``TaskSpec``, ``InputSpec`` and ``ColumnSpec``.

They are built by ``flow_parser.load_flow``, which checks every key and type of the file.
Graph checks (cycles, unknown dependencies, two writers of one dataset) live in ``dag.py``;
template checks in ``validation.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qarion_etl.errors import shown_path


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    schema_type: str = "string"
    required: bool = False


@dataclass(frozen=True, slots=True)
class InputSpec:
    primary_key: tuple[str, ...] = ()
    columns: tuple[ColumnSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One ``[[tasks]]`` entry."""

    id: str
    type: str
    name: str | None = None
    description: str | None = None
    source_dataset_id: str | None = None
    target_dataset_id: str | None = None
    dependencies: tuple[str, ...] = ()
    properties: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    retries: int = 0
    retry_delay_seconds: float = 0.0
    retry_exponential_backoff: bool = False
    do_xcom_push: bool = True
    timeout_seconds: float | None = None
    line: int | None = None
    key_lines: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    def line_of(self, key: str) -> int | None:
        """The file line of one of this task's keys, else of its ``[[tasks]]`` header."""
        return self.key_lines.get(key, self.line)

    @property
    def processing_type(self) -> str:
        return str(self.properties.get("processing_type", "FULL_REFRESH")).upper()


@dataclass(frozen=True, slots=True)
class Flow:
    """A parsed, schema-checked flow file."""

    id: str
    path: Path
    name: str | None = None
    description: str | None = None
    flow_type: str = "standard"
    namespace: str = ""
    input: InputSpec = InputSpec()
    tasks: tuple[TaskSpec, ...] = ()
    text: str = field(default="", repr=False, compare=False)

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    @property
    def task_ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    @property
    def shown_path(self) -> str:
        return shown_path(self.path)
