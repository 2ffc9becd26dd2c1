"""SQL templates: the Jinja environment, static checks for ``validate``, and rendering.

The environment uses ``StrictUndefined`` and a ``finalize`` that refuses to paste ``None``,
a JSON object or a list into SQL. Filters ``sql_literal`` and ``sql_identifier`` quote a
value for the engine's dialect, so a STRING XCom can be used safely.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import TemplateError

if TYPE_CHECKING:
    import jinja2
    from jinja2 import nodes

PULL_NAMES = ("xcom_pull",)
TI_NAMES = ("ti", "task_instance")


def _finalize(value: Any) -> Any:
    if value is None:
        raise TemplateError(
            "an expression rendered None into the SQL; pull a field with key='…' or ['field'], "
            "or give default=…"
        )
    if isinstance(value, (dict, list, tuple)):
        kind = "a JSON object" if isinstance(value, dict) else "a list"
        raise TemplateError(
            f"an expression rendered {kind} into the SQL ({_short(value)}); "
            "pull one field with key='…' or index it with ['field']"
        )
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def sql_literal(value: Any, dialect: str | None = None) -> str:
    """Quote ``value`` as a SQL literal for ``dialect``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise TemplateError(f"sql_literal: {value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        value = value.isoformat(sep=" ") if isinstance(value, _dt.datetime) else value.isoformat()
    text = str(value)
    if "\x00" in text:
        raise TemplateError("sql_literal: a value with a NUL character cannot be a SQL literal")
    text = text.replace("'", "''")
    if dialect in ("mysql", "mariadb"):
        text = text.replace("\\", "\\\\")
    return f"'{text}'"


def sql_identifier(value: Any, dialect: str | None = None) -> str:
    """Quote ``value`` as one identifier for ``dialect``."""
    text = str(value)
    if not text or "\x00" in text:
        raise TemplateError(f"sql_identifier: {value!r} is not a valid identifier")
    if dialect in ("mysql", "mariadb"):
        return "`" + text.replace("`", "``") + "`"
    return '"' + text.replace('"', '""') + '"'


def make_environment(dialect: str | None = None) -> jinja2.Environment:
    """A Jinja environment for SQL with qarion-etl's rules and filters."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["sql_literal"] = lambda v: sql_literal(v, dialect)
    env.filters["sql_identifier"] = lambda v: sql_identifier(v, dialect)
    return env


@dataclass(frozen=True, slots=True)
class PullRef:
    """One ``xcom_pull`` call found in a template."""

    task_ids: tuple[str, ...] | None  # None when not a constant
    key: str | None
    other_flow: bool
    has_default: bool
    lineno: int


def parse_template(source: str) -> nodes.Template:
    """Parse ``source``; raises ``jinja2.TemplateSyntaxError``."""
    return make_environment().parse(source)


def find_pulls(tree: nodes.Template) -> Iterator[PullRef]:
    from jinja2 import nodes

    for call in tree.find_all(nodes.Call):
        target = call.node
        is_pull = (isinstance(target, nodes.Name) and target.name in PULL_NAMES) or (
            isinstance(target, nodes.Getattr)
            and target.attr == "xcom_pull"
            and isinstance(target.node, nodes.Name)
            and target.node.name in TI_NAMES
        )
        if not is_pull:
            continue
        kwargs = {kw.key: kw.value for kw in call.kwargs}
        first = call.args[0] if call.args else kwargs.get("task_ids")
        task_ids: tuple[str, ...] | None = None
        if isinstance(first, nodes.Const) and isinstance(first.value, str):
            task_ids = (first.value,)
        elif isinstance(first, (nodes.List, nodes.Tuple)) and all(
            isinstance(i, nodes.Const) and isinstance(i.value, str) for i in first.items
        ):
            task_ids = tuple(i.value for i in first.items)  # type: ignore[attr-defined]
        key_node = call.args[1] if len(call.args) > 1 else kwargs.get("key")
        key = (
            key_node.value
            if isinstance(key_node, nodes.Const) and isinstance(key_node.value, str)
            else None
        )
        other = "flow_id" in kwargs and not (
            isinstance(kwargs["flow_id"], nodes.Const) and kwargs["flow_id"].value is None
        )
        yield PullRef(task_ids, key, other, "default" in kwargs, call.lineno)


# --- rendering (used by the runner and ``qarion-etl render``) ----------------------------

_NO_DEFAULT: Any = object()


class PullResolver:
    """What ``xcom_pull`` does inside a template of one task of one run.

    Within the flow it reads the current run's values, except for tasks listed in
    ``run_for_task`` (upstream tasks that were not re-run: their values come from the run
    named there). ``given`` holds values from ``render --xcom task.key=value``; the
    service is only created (and the store only connected) for a pull not in ``given``.

    Args:
        flow_id: the current flow.
        dag_run_id: the current run.
        service: a zero-argument callable returning an ``XComService``, or ``None``.
        run_for_task: ``{task_id: dag_run_id}`` overrides for values of earlier runs.
        given: ``{(task_id, key): value}`` known without asking the store.
    """

    def __init__(
        self,
        flow_id: str,
        dag_run_id: str | None,
        service: Any = None,
        run_for_task: dict[str, str] | None = None,
        given: dict[tuple[str, str], Any] | None = None,
    ) -> None:
        self.flow_id = flow_id
        self.dag_run_id = dag_run_id
        self._service_factory = service
        self._service: Any = None
        self.run_for_task = run_for_task or {}
        self.given = given or {}

    def _pull_one(
        self,
        task_id: str,
        key: str,
        flow_id: str | None,
        batch_id: int | None,
        dag_run_id: str | None,
        default: Any,
    ) -> Any:
        if not isinstance(task_id, str) or not task_id:
            raise TemplateError(f"xcom_pull needs task ids as strings, got {task_id!r}")
        same_flow = flow_id is None or flow_id == self.flow_id
        if same_flow and (task_id, key) in self.given and batch_id is None and dag_run_id is None:
            return self.given[(task_id, key)]
        run = dag_run_id
        if same_flow and run is None and batch_id is None:
            run = self.run_for_task.get(task_id, self.dag_run_id)
        if self._service_factory is None:
            if default is not _NO_DEFAULT:
                return default
            raise TemplateError(
                f"xcom_pull('{task_id}', key='{key}') has no value: give one with --xcom {task_id}.{key}=VALUE"
            )
        if self._service is None:
            self._service = self._service_factory()
        missing = object()
        value = self._service.pull(
            task_id,
            key=key,
            batch_id=batch_id,
            dag_run_id=run,
            flow_id=flow_id or self.flow_id,
            default=missing,
        )
        if value is missing:
            if default is not _NO_DEFAULT:
                return default
            where = [f"flow '{flow_id or self.flow_id}'"]
            if run is not None:
                where.append(f"run '{run}'")
            if batch_id is not None:
                where.append(f"batch {batch_id}")
            raise TemplateError(
                f"xcom_pull('{task_id}', key='{key}') found nothing in {', '.join(where)}",
                hint="check that the task ran and pushed this key, or pass default=…",
            )
        return value

    def xcom_pull(
        self,
        task_ids: Any,
        key: str = "return_value",
        flow_id: str | None = None,
        batch_id: int | None = None,
        dag_run_id: str | None = None,
        default: Any = _NO_DEFAULT,
    ) -> Any:
        """Airflow's ``xcom_pull``: one value for one task id, a list for a list of ids."""
        if isinstance(task_ids, (list, tuple)):
            return [
                self._pull_one(t, key, flow_id, batch_id, dag_run_id, default) for t in task_ids
            ]
        return self._pull_one(task_ids, key, flow_id, batch_id, dag_run_id, default)


class TaskInstanceProxy:
    """``ti`` / ``task_instance`` in templates (Airflow spelling)."""

    def __init__(
        self, task_id: str, dag_run_id: str | None, batch_id: int | None, resolver: PullResolver
    ) -> None:
        self.task_id = task_id
        self.dag_run_id = self.run_id = dag_run_id
        self.batch_id = batch_id
        self.xcom_pull = resolver.xcom_pull


def template_context(
    *,
    flow_id: str,
    task_id: str,
    dag_run_id: str | None,
    batch_id: int | None,
    ds: str,
    source_dataset: str | None,
    target_dataset: str | None,
    variables: dict[str, Any],
    resolver: PullResolver,
) -> dict[str, Any]:
    """The names a SQL template can use (design.md §5)."""

    def var(name: str, default: Any = _NO_DEFAULT) -> Any:
        if name in variables:
            return variables[name]
        if default is not _NO_DEFAULT:
            return default
        raise TemplateError(
            f"var('{name}') is not set: pass --var {name}=VALUE or give var('{name}', default)"
        )

    ti = TaskInstanceProxy(task_id, dag_run_id, batch_id, resolver)
    context: dict[str, Any] = {
        "xcom_pull": resolver.xcom_pull,
        "ti": ti,
        "task_instance": ti,
        "var": var,
        "flow_id": flow_id,
        "task_id": task_id,
        "dag_run_id": dag_run_id,
        "run_id": dag_run_id,
        "batch_id": batch_id,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "params": dict(variables),
    }
    if source_dataset is not None:
        context["source_dataset"] = source_dataset
    if target_dataset is not None:
        context["target_dataset"] = target_dataset
    return context


_ENVS: dict[str | None, Any] = {}


def render_sql(source: str, context: dict[str, Any], dialect: str | None = None) -> str:
    """Render one SQL template; every failure becomes a ``TemplateError`` (line kept)."""
    import jinja2

    env = _ENVS.get(dialect)
    if env is None:
        env = _ENVS[dialect] = make_environment(dialect)
    try:
        return str(env.from_string(source).render(context))
    except TemplateError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"SQL template syntax error: {exc.message}", line=exc.lineno) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"SQL template: {exc.message}",
            hint="names available: xcom_pull, ti, var, source_dataset, target_dataset, "
            "batch_id, dag_run_id, flow_id, ds",
        ) from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"SQL template: {exc}") from exc
