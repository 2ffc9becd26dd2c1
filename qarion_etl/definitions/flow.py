"""The models of a flow file: ``Flow``, ``TaskSpec``, ``InputSpec`` and ``ColumnSpec``.

They are built by ``flow_parser.load_flow``, which checks every key and type of the file.
Graph checks (cycles, unknown dependencies, two writers of one dataset) live in ``dag.py``;
template checks in ``validation.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qarion_etl.definitions.checks import CheckSpec
from qarion_etl.errors import shown_path

#: The values of a task's ``retry_on``.
RETRY_ON = ("transient", "any")
#: The most ``retries`` a task may have.
MAX_RETRIES = 1000
#: The longest wait between two tries (``retry_delay_seconds``, and the cap of its
#: exponential backoff): a week.
MAX_RETRY_DELAY = 7 * 24 * 3600.0
#: The longest ``timeout_seconds``: 30 days.
MAX_TIMEOUT = 30 * 24 * 3600.0

#: ``sql = …`` in a flow file: group 1 is a multi-line string's opening quotes.
_SQL_KEY = re.compile(r"""^\s*"?sql"?\s*=\s*("{3}|'{3})?(.*)$""")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of an input file (``[input].columns`` or a task's ``columns``)."""

    name: str
    schema_type: str = "string"
    required: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class InputSpec:
    """The schema of an ingestion's file: its key and its typed columns."""

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
    #: The flow's ``tags`` and then the task's own (``--select tag:NAME``).
    tags: tuple[str, ...] = ()
    properties: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    retries: int = 0
    retry_delay_seconds: float = 0.0
    retry_exponential_backoff: bool = False
    #: ``transient``: retry only errors another try can pass; ``any``: retry every error.
    retry_on: str = "transient"
    do_xcom_push: bool = True
    timeout_seconds: float | None = None
    #: ``table``, ``view``, ``ephemeral`` or ``incremental`` (transformations).
    materialized: str = "table"
    #: An ingestion's own ``primary_key`` (``None``: the flow's ``[input]``).
    primary_key: tuple[str, ...] | None = None
    #: An ingestion's own ``columns``, or a transformation's documented ones.
    columns: tuple[ColumnSpec, ...] | None = None
    #: The key an incremental transformation upserts on (empty: it appends).
    unique_key: tuple[str, ...] = ()
    #: ``[[tasks.checks]]``: data checks run on the staged table before it is published.
    checks: tuple[CheckSpec, ...] = ()
    line: int | None = None
    key_lines: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    def line_of(self, key: str) -> int | None:
        """The file line of one of this task's keys, else of its ``[[tasks]]`` header."""
        return self.key_lines.get(key, self.line)

    @property
    def processing_type(self) -> str:
        """``FULL_REFRESH`` or ``INCREMENTAL`` (``materialized = "incremental"`` is the latter)."""
        if self.materialized == "incremental":
            return "INCREMENTAL"
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
    #: The flow's own ``tags``; every task has them too.
    tags: tuple[str, ...] = ()
    input: InputSpec = InputSpec()
    tasks: tuple[TaskSpec, ...] = ()
    text: str = field(default="", repr=False, compare=False)
    #: The tasks by id, filled on first lookup (a run looks each task up several times).
    _by_id: dict[str, TaskSpec] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def input_for(self, task: TaskSpec) -> InputSpec:
        """The schema of ``task``'s file: its own ``primary_key`` and ``columns`` where it
        declares them, else the flow's ``[input]``."""
        if task.primary_key is None and task.columns is None:
            return self.input
        return InputSpec(
            self.input.primary_key if task.primary_key is None else task.primary_key,
            self.input.columns if task.columns is None else task.columns,
        )

    def task(self, task_id: str) -> TaskSpec:
        if not self._by_id:
            self._by_id.update((t.id, t) for t in self.tasks)
        return self._by_id[task_id]

    @property
    def task_ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    @property
    def shown_path(self) -> str:
        return shown_path(self.path)

    def sql_line(self, task: TaskSpec, template_line: int = 1) -> int | None:
        """The line of this file that holds line ``template_line`` of ``task``'s ``sql``.

        The ``sql =`` line itself for a one-line string (or for the first line of a
        multi-line string written on it), the lines below it for a multi-line string that
        starts on the next line.
        """
        if task.line is None or not self.text:
            return task.line
        lines = self.text.splitlines()
        for i in range(task.line - 1, len(lines)):
            if i > task.line - 1 and lines[i].strip().startswith("[[tasks]]"):
                break
            m = _SQL_KEY.match(lines[i])
            if m:
                starts_below = bool(m.group(1)) and not m.group(2).strip()
                return i + 1 + template_line - (0 if starts_below else 1)
        return task.line

    def config_line(self, task: TaskSpec, key: str) -> int | None:
        """The line of ``key = …`` in ``task``'s tables (``[tasks.config]`` …), else the task's."""
        if task.line is None or not self.text:
            return task.line
        pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
        lines = self.text.splitlines()
        for i in range(task.line - 1, len(lines)):
            if i > task.line - 1 and lines[i].strip().startswith("[[tasks]]"):
                break
            if pattern.match(lines[i]):
                return i + 1
        return task.line
