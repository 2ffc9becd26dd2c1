"""Reading a flow file: ``load_flow(path)`` and the ``FlowParser`` behind it.

``load_flow`` returns a ``Flow`` or raises ``FlowValidationError`` whose problems each
name the file, the task and (where it can be found) the line. ``FlowParser`` checks every
key, type and task config of one flow document and collects each problem with the line it
was found on, so a file's mistakes are all reported together. What each task type
accepts is asked of ``task_types``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qarion_etl.definitions.checks import CheckSpec, parse_checks
from qarion_etl.definitions.flow import (
    MAX_RETRIES,
    MAX_RETRY_DELAY,
    MAX_TIMEOUT,
    RETRY_ON,
    ColumnSpec,
    Flow,
    InputSpec,
    TaskSpec,
)
from qarion_etl.definitions.task_schema import (
    check_key_columns,
    check_materialized,
    parse_columns,
    parse_key,
    parse_task_schema,
)
from qarion_etl.definitions.task_types import (
    PROCESSING_TYPES,
    PROPERTY_KEYS,
    TASK_TYPES,
)
from qarion_etl.definitions.toml import KeyLocator, TomlSyntaxError, load_toml, type_names
from qarion_etl.errors import (
    FlowValidationError,
    Problem,
    clip,
    did_you_mean,
    shown_path,
    with_article,
)

FLOW_KEYS = {"id", "name", "description", "flow_type", "namespace", "tags", "input", "tasks"}
INPUT_KEYS = {"primary_key", "columns"}
TASK_KEYS = {
    "id",
    "name",
    "description",
    "type",
    "source_dataset_id",
    "target_dataset_id",
    "dependencies",
    "tags",
    "properties",
    "config",
    "retries",
    "retry_delay_seconds",
    "retry_exponential_backoff",
    "retry_on",
    "do_xcom_push",
    "timeout_seconds",
    "materialized",
    "primary_key",
    "columns",
    "unique_key",
    "checks",
}
FLOW_TYPES = ("standard",)


def load_flow(path: Path) -> Flow:
    """Read and check one flow file (schema only; see ``validation.validate_flow``)."""
    shown = shown_path(path)
    try:
        doc, text = load_toml(path)
    except TomlSyntaxError as exc:
        raise FlowValidationError(
            shown, [Problem(exc.message + (f"\n  hint: {exc.hint}" if exc.hint else ""), exc.line)]
        ) from exc
    parser = FlowParser(path, doc, text)
    flow = parser.parse()
    if parser.problems:
        raise FlowValidationError(shown, parser.problems)
    return flow


class FlowParser:
    """Checks one flow document; ``parse()`` returns the flow, ``problems`` what is wrong."""

    def __init__(self, path: Path, doc: dict[str, Any], text: str) -> None:
        self.path = path
        self.doc = doc
        self.text = text
        self.loc = KeyLocator(text)
        self.problems: list[Problem] = []
        self.flow_tags: tuple[str, ...] = ()
        self.input_columns: tuple[ColumnSpec, ...] = ()
        self.input_spec = InputSpec()

    def problem(self, message: str, line: int | None = None, task_id: str | None = None) -> None:
        self.problems.append(Problem(message, line, task_id))

    def _unknown(
        self,
        table: Mapping[str, Any],
        allowed: set[str] | frozenset[str],
        what: str,
        line_of: Any,
        task_id: str | None = None,
    ) -> None:
        for key in table:
            if key not in allowed:
                self.problem(
                    f"unknown key '{key}' in {what}{did_you_mean(key, allowed)}",
                    line_of(key),
                    task_id,
                )

    def _typed(
        self,
        table: Mapping[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        default: Any,
        line: int | None,
        task_id: str | None = None,
    ) -> Any:
        value = table.get(key, default)
        if value is default:
            return value
        ok = isinstance(value, kind) and not (
            isinstance(value, bool) and kind in (int, float, (int, float))
        )
        if not ok:
            names = type_names(kind)
            self.problem(
                f"'{key}' must be {with_article(names)}, got {_show(value)}", line, task_id
            )
            return default
        return value

    def _bounded(
        self,
        table: Mapping[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        default: Any,
        bounds: tuple[float, float],
        line_of: Callable[[str], int | None],
        task_id: str | None,
    ) -> Any:
        """A number of ``kind`` within ``bounds`` (finite); the default, with a problem, if not."""
        value = self._typed(table, key, kind, default, line_of(key), task_id)
        if value is None or value is default:
            return value
        low, high = bounds
        if not (math.isfinite(value) and low <= value <= high):
            self.problem(
                f"'{key}' must be a number from {low:g} to {high:,.0f}, got {_show(value)}",
                line_of(key),
                task_id,
            )
            return default
        return value

    def _tags(
        self, table: Mapping[str, Any], line: int | None, task_id: str | None = None
    ) -> tuple[str, ...]:
        """``tags = ["nightly", …]``: a list of names, each at most once."""
        raw = table.get("tags", [])
        if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
            self.problem(f"'tags' must be a list of strings, got {_show(raw)}", line, task_id)
            return ()
        for tag in raw:
            if not _is_tag(tag):
                self.problem(
                    f"tag {_show(tag)} must be letters, digits, '_', '-' or '.'", line, task_id
                )
        return tuple(dict.fromkeys(t for t in raw if _is_tag(t)))

    def parse(self) -> Flow:
        doc, loc = self.doc, self.loc
        self._unknown(doc, FLOW_KEYS, "the flow", lambda k: loc.key_line(k) or loc.table_line(k))
        flow_id = self._typed(doc, "id", str, self.path.stem, loc.key_line("id"))
        if not _is_identifier(flow_id):
            self.problem(
                f"flow id {_show(flow_id)} must be letters, digits, '_' or '-'", loc.key_line("id")
            )
        flow_type = self._typed(doc, "flow_type", str, "standard", loc.key_line("flow_type"))
        if flow_type not in FLOW_TYPES:
            self.problem(
                f"unknown flow_type '{flow_type}' (known: {', '.join(FLOW_TYPES)})",
                loc.key_line("flow_type"),
            )
        namespace = self._typed(
            doc, "namespace", str, flow_id.replace("-", "_"), loc.key_line("namespace")
        )
        if not _is_identifier(namespace) or "-" in namespace:
            self.problem(
                f"namespace {_show(namespace)} must be letters, digits and '_'",
                loc.key_line("namespace"),
            )
        self.flow_tags = self._tags(doc, loc.key_line("tags"))
        input_spec = self.input_spec = self._parse_input(doc.get("input", {}))
        self.input_columns = input_spec.columns
        raw_tasks = doc.get("tasks", [])
        if not isinstance(raw_tasks, list) or not all(isinstance(t, dict) for t in raw_tasks):
            self.problem("'tasks' must be [[tasks]] tables", loc.key_line("tasks"))
            raw_tasks = []
        if not raw_tasks:
            self.problem("the flow has no tasks (add [[tasks]] entries)")
        tasks = tuple(self._parse_task(i, t) for i, t in enumerate(raw_tasks))
        return Flow(
            id=flow_id,
            path=self.path,
            name=self._typed(doc, "name", str, None, loc.key_line("name")),
            description=self._typed(doc, "description", str, None, loc.key_line("description")),
            flow_type=flow_type,
            namespace=namespace,
            tags=self.flow_tags,
            input=input_spec,
            tasks=tasks,
            text=self.text,
        )

    def _parse_input(self, raw: Any) -> InputSpec:
        loc = self.loc
        if not isinstance(raw, dict):
            self.problem("'input' must be a table", loc.key_line("input"))
            return InputSpec()
        self._unknown(raw, INPUT_KEYS, "[input]", lambda k: loc.key_line(k, "input"))
        pk = parse_key(
            self,
            raw.get("primary_key", []),
            "[input].primary_key",
            loc.key_line("primary_key", "input"),
        )
        columns = parse_columns(
            self, raw.get("columns", []), "[input].columns", loc.key_line("columns", "input")
        )
        check_key_columns(
            self, pk, columns, "[input].columns", loc.key_line("primary_key", "input")
        )
        return InputSpec(tuple(pk), tuple(columns))

    def _parse_task(self, index: int, raw: dict[str, Any]) -> TaskSpec:
        loc = self.loc
        line = loc.table_line("tasks", index)
        task_id = raw.get("id")
        if not isinstance(task_id, str) or not task_id:
            self.problem(f"task #{index + 1} has no 'id'", line)
            task_id = f"#{index + 1}"
        elif not _is_identifier(task_id):
            self.problem(
                f"task id {_show(task_id)} must be letters, digits, '_' or '-'",
                loc.key_line("id", "tasks", index),
                task_id,
            )

        def kl(key: str) -> int | None:
            return loc.key_line(key, "tasks", index)

        self._unknown(raw, TASK_KEYS, "[[tasks]]", kl, task_id)
        ttype = raw.get("type")
        spec = TASK_TYPES.get(ttype) if isinstance(ttype, str) else None
        if ttype is None:
            self.problem(f"missing 'type' (one of: {', '.join(TASK_TYPES)})", line, task_id)
        elif spec is None:
            self.problem(
                f"unknown task type {ttype!r}{did_you_mean(str(ttype), TASK_TYPES)} (known: {', '.join(TASK_TYPES)})",
                kl("type"),
                task_id,
            )
        deps = raw.get("dependencies", [])
        if isinstance(deps, str):
            deps = [deps]
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            self.problem("'dependencies' must be a list of task ids", kl("dependencies"), task_id)
            deps = []
        properties = raw.get("properties", {})
        if not isinstance(properties, dict):
            self.problem("'properties' must be a table", kl("properties"), task_id)
            properties = {}
        config = raw.get("config", {})
        if not isinstance(config, dict):
            self.problem("'config' must be a table", kl("config"), task_id)
            config = {}

        def cl(key: str) -> int | None:
            return loc.sub_key_line(key, "tasks", index, "config") or line

        def pl(key: str) -> int | None:
            return loc.sub_key_line(key, "tasks", index, "properties") or line

        self._unknown(properties, PROPERTY_KEYS, "[tasks.properties]", pl, task_id)
        ptype = str(properties.get("processing_type", "FULL_REFRESH")).upper()
        if ptype not in PROCESSING_TYPES:
            self.problem(
                f"unknown processing_type {properties.get('processing_type')!r}"
                f"{did_you_mean(ptype, PROCESSING_TYPES)} (known: {', '.join(PROCESSING_TYPES)})",
                pl("processing_type"),
                task_id,
            )
        if spec is not None:
            a_type = f"{with_article(spec.name)} task"
            self._unknown(config, spec.config_keys, f"[tasks.config] of {a_type}", cl, task_id)
            for key in sorted(spec.required_config - set(config)):
                self.problem(
                    f"missing config '{key}' ({a_type} needs: {', '.join(sorted(spec.required_config))})",
                    line,
                    task_id,
                )
            if spec.needs_target and not raw.get("target_dataset_id"):
                self.problem(f"{a_type} needs 'target_dataset_id'", line, task_id)
            spec.check_config(config, lambda message, key: self.problem(message, cl(key), task_id))
        for key in ("source_dataset_id", "target_dataset_id"):
            value = raw.get(key)
            if value is not None and (
                not isinstance(value, str) or not value or not _is_identifier(value) or "-" in value
            ):
                self.problem(
                    f"'{key}' must be a table name of letters, digits and '_', got {_show(value)}",
                    kl(key),
                    task_id,
                )
        retries = self._bounded(raw, "retries", int, 0, (0, MAX_RETRIES), kl, task_id)
        delay = self._bounded(
            raw, "retry_delay_seconds", (int, float), 0.0, (0, MAX_RETRY_DELAY), kl, task_id
        )
        timeout = self._bounded(
            raw, "timeout_seconds", (int, float), None, (0, MAX_TIMEOUT), kl, task_id
        )
        if timeout is not None and timeout <= 0:
            self.problem("'timeout_seconds' must be positive", kl("timeout_seconds"), task_id)
            timeout = None
        retry_on = self._typed(raw, "retry_on", str, "transient", kl("retry_on"), task_id)
        if retry_on not in RETRY_ON:
            self.problem(
                f"'retry_on' must be one of {', '.join(map(repr, RETRY_ON))}, got {_show(retry_on)}"
                f"{did_you_mean(str(retry_on), RETRY_ON)}",
                kl("retry_on"),
                task_id,
            )
            retry_on = "transient"
        materialized = self._typed(raw, "materialized", str, "table", kl("materialized"), task_id)
        materialized = check_materialized(self, raw, materialized, kl, pl, task_id)
        schema = parse_task_schema(self, raw, kl, task_id, self.input_columns)
        return TaskSpec(
            id=task_id,
            type=str(ttype),
            name=self._typed(raw, "name", str, None, kl("name"), task_id),
            description=self._typed(raw, "description", str, None, kl("description"), task_id),
            source_dataset_id=raw.get("source_dataset_id")
            if isinstance(raw.get("source_dataset_id"), str)
            else None,
            target_dataset_id=raw.get("target_dataset_id")
            if isinstance(raw.get("target_dataset_id"), str)
            else None,
            dependencies=tuple(deps),
            tags=tuple(dict.fromkeys((*self.flow_tags, *self._tags(raw, kl("tags"), task_id)))),
            properties=MappingProxyType(dict(properties)),
            config=MappingProxyType(dict(config)),
            retries=retries,
            retry_delay_seconds=float(delay),
            retry_exponential_backoff=self._typed(
                raw,
                "retry_exponential_backoff",
                bool,
                False,
                kl("retry_exponential_backoff"),
                task_id,
            ),
            retry_on=retry_on,
            do_xcom_push=self._typed(raw, "do_xcom_push", bool, True, kl("do_xcom_push"), task_id),
            timeout_seconds=float(timeout) if timeout is not None else None,
            materialized=materialized,
            primary_key=schema.primary_key,
            columns=schema.columns,
            unique_key=schema.unique_key,
            checks=self._checks(
                raw, index, line, task_id, spec.name if spec else None, schema.columns
            ),
            line=line,
            key_lines=MappingProxyType({k: n for k in raw if (n := kl(k)) is not None}),
        )

    def _checks(
        self,
        raw: dict[str, Any],
        index: int,
        line: int | None,
        task_id: str,
        kind: str | None,
        own_columns: tuple[ColumnSpec, ...] | None,
    ) -> tuple[CheckSpec, ...]:
        """The task's ``[[tasks.checks]]`` (``definitions.checks``), problems collected.

        On an ingestion with typed columns (its own, else ``[input]``'s) a check's column
        must be one of them.
        """
        if "checks" not in raw:
            return ()
        if raw.get("materialized") == "ephemeral":
            self.problem(
                "an ephemeral task publishes nothing to check: put the checks on a task "
                "that refs it",
                self.loc.key_line("checks", "tasks", index) or line,
                task_id,
            )
            return ()
        known: tuple[str, ...] = ()
        columns = own_columns if own_columns is not None else self.input_spec.columns
        if kind == "ingestion" and columns:
            known = (*(c.name for c in columns), "batch_id")
        return parse_checks(
            raw["checks"],
            loc=self.loc,
            task_index=index,
            task_line=line,
            problem=lambda message, at: self.problem(message, at, task_id),
            writes_target=bool(raw.get("target_dataset_id")) and kind is not None,
            known_columns=known,
        )


def _is_identifier(value: str) -> bool:
    return (
        bool(value)
        and len(value) <= 128
        and all(c.isalnum() and c.isascii() or c in "_-" for c in value)
        and not value[0].isdigit()
        and value[0] != "-"
    )


def _is_tag(value: str) -> bool:
    return 0 < len(value) <= 128 and all(c.isalnum() and c.isascii() or c in "_-." for c in value)


def _show(value: object) -> str:
    """``repr`` of a value, shortened so one bad field cannot flood the terminal."""
    return clip(repr(value))
