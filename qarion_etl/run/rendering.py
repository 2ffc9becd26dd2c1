"""Rendering a task's SQL template: for a run (``RunExecution``) and for ``qarion-etl render``.

``template_context`` builds the names a template can use (design.md §5); ``PullResolver``
is what ``xcom_pull`` does inside it (the current run's values, earlier runs' for upstream
tasks that were not re-run, or values given with ``render --xcom``); ``render_sql``
renders with the Jinja environment of ``definitions.templates`` plus the quoting filters
of the engine's dialect. ``render_task`` touches no store for pulls answered by ``given``:
the XCom store is only connected for a pull it must read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.definitions.task_types import task_type
from qarion_etl.definitions.templates import is_plain, make_environment
from qarion_etl.errors import (
    NotRenderable,
    QarionError,
    TaskNotFound,
    TemplateError,
    XComNotFound,
)
from qarion_etl.run.refs import MAX_DEPTH, RefRenderer, bind_macros
from qarion_etl.xcom import MISSING

if TYPE_CHECKING:
    import jinja2

    from qarion_etl.db.dialects import Dialect
    from qarion_etl.db.service import DatabaseService
    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.definitions.macros import Macros
    from qarion_etl.definitions.refs import ModelIndex, Resolved
    from qarion_etl.project import Project
    from qarion_etl.xcom import XComService


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
        service: Callable[[], XComService] | None = None,
        run_for_task: dict[str, str] | None = None,
        given: dict[tuple[str, str], Any] | None = None,
    ) -> None:
        self.flow_id = flow_id
        self.dag_run_id = dag_run_id
        self._service_factory = service
        self._service: XComService | None = None
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
            if default is not MISSING:
                return default
            raise TemplateError(
                f"xcom_pull('{task_id}', key='{key}') has no value: give one with --xcom {task_id}.{key}=VALUE"
            )
        if self._service is None:
            self._service = self._service_factory()
        try:
            return self._service.pull(
                task_id,
                key=key,
                batch_id=batch_id,
                dag_run_id=run,
                flow_id=flow_id or self.flow_id,
                default=MISSING,
            )
        except XComNotFound:
            if default is not MISSING:
                return default
            where = [f"flow '{flow_id or self.flow_id}'"]
            if run is not None:
                where.append(f"run '{run}'")
            if batch_id is not None:
                where.append(f"batch {batch_id}")
            raise TemplateError(
                f"xcom_pull('{task_id}', key='{key}') found nothing in {', '.join(where)}",
                hint="check that the task ran and pushed this key, or pass default=…",
            ) from None

    def for_flow(self, flow_id: str) -> PullResolver:
        """The pulls of a task of another flow, inlined here: its flow's newest values."""
        return PullResolver(flow_id, None, self._service_factory, given=self.given)

    def xcom_pull(
        self,
        task_ids: Any,
        key: str = "return_value",
        flow_id: str | None = None,
        batch_id: int | None = None,
        dag_run_id: str | None = None,
        default: Any = MISSING,
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
    ref: Callable[..., str] | None = None,
    incremental: bool = False,
) -> dict[str, Any]:
    """The names a SQL template can use (design.md §5), and ``ref`` when given.

    ``is_incremental()`` is ``incremental``: true while an incremental model adds to a
    target that exists (not on its first run, nor under ``--full-refresh``).
    """

    def var(name: str, default: Any = MISSING) -> Any:
        if name in variables:
            return variables[name]
        if default is not MISSING:
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
        "is_incremental": lambda: incremental,
    }
    if source_dataset is not None:
        context["source_dataset"] = source_dataset
    if target_dataset is not None:
        context["target_dataset"] = target_dataset
    if ref is not None:
        context["ref"] = ref
    return context


_ENVS: dict[str, jinja2.Environment] = {}


def _quoting_filters(dialect: Dialect) -> dict[str, Callable[[Any], str]]:
    """``sql_literal`` and ``sql_identifier``: a value quoted by the engine's own rules."""

    def sql_literal(value: Any) -> str:
        try:
            return dialect.literal(value)
        except ValueError as exc:
            raise TemplateError(f"sql_literal: {exc}") from None

    def sql_identifier(value: Any) -> str:
        text = str(value)
        if not text or "\x00" in text:
            raise TemplateError(f"sql_identifier: {value!r} is not a valid identifier")
        return dialect.quote(text)

    return {"sql_literal": sql_literal, "sql_identifier": sql_identifier}


def render_sql(
    source: str, context: dict[str, Any], dialect: Dialect, macros: Macros | None = None
) -> str:
    """Render one SQL template; every failure becomes a ``TemplateError`` (line kept).

    The project's ``macros`` are callable from it, rendered with the same ``context``.
    """
    if is_plain(source):
        return source.replace("\r\n", "\n")  # as Jinja would, without compiling it
    import jinja2

    env = _ENVS.get(dialect.name)
    if env is None:
        env = _ENVS[dialect.name] = make_environment(_quoting_filters(dialect))
    try:
        if macros is not None and macros.files:
            bind_macros(env, macros, context)
        return str(env.from_string(source).render(context))
    except TemplateError as exc:
        exc.line = exc.line or _template_line(exc)
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"SQL template syntax error: {exc.message}", line=exc.lineno) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"SQL template: {exc.message}",
            line=_template_line(exc),
            hint="names available: xcom_pull, ti, var, source_dataset, target_dataset, "
            "batch_id, dag_run_id, flow_id, ds",
        ) from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"SQL template: {exc}", line=_template_line(exc)) from exc
    except QarionError:  # a pull that found nothing, a store that is down: as they are
        raise
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
        # Python's own error inside an expression ({{ 1/0 }}, {{ 'a' + 1 }}), raised while
        # Jinja compiles (constant folding) or renders the template.
        raise TemplateError(
            f"SQL template: {type(exc).__name__}: {exc}", line=_template_line(exc)
        ) from exc


def _template_line(exc: BaseException) -> int | None:
    """The template line an error raised while rendering came from (Jinja's own frames)."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_task(
    project: Project,
    flow_ref: str | Path,
    task_id: str,
    *,
    given: dict[tuple[str, str], Any] | None = None,
    variables: dict[str, Any] | None = None,
    batch_id: int | None = None,
    dag_run_id: str | None = None,
) -> str:
    """The SQL of ``task_id`` rendered, executing nothing.

    Pulls answered by ``given`` (``{(task, key): value}``) touch no store; other pulls
    read the newest matching value from the XCom store.
    """
    flow, _ = project.validate(flow_ref)
    try:
        spec = flow.task(task_id)
    except KeyError:
        raise TaskNotFound(task_id, flow.id, flow.task_ids) from None
    kind = task_type(spec.type)
    if kind is None or not kind.has_sql or not isinstance(spec.config.get("sql"), str):
        raise NotRenderable(task_id, spec.type)
    factory = (lambda: project.xcom_service(flow.id)) if project.config.xcom.enabled else None
    resolver = PullResolver(flow.id, dag_run_id, factory, given=given or {})
    return render_task_sql(
        flow,
        spec,
        project.engine_db(),
        resolver,
        variables or {},
        batch_id if batch_id is not None else 0,
        dag_run_id,
        dt.date.today().isoformat(),
        index=project.models(),
    )


def render_task_sql(
    flow: Flow,
    spec: TaskSpec,
    db: DatabaseService,
    resolver: PullResolver,
    variables: dict[str, Any],
    batch_id: int,
    dag_run_id: str | None,
    ds: str,
    source: str | None = None,
    *,
    incremental: bool = False,
    index: ModelIndex | None = None,
    check_exists: bool = False,
    depth: int = 0,
) -> str:
    """Render ``source`` (default: the task's ``config.sql``) with the run's template context.

    With ``index`` (the project's flows and macros), ``ref()`` and the macros are defined;
    ``check_exists`` makes a ref to a missing table of another flow fail (a run);
    ``incremental`` is what ``is_incremental()`` returns.
    """

    refs = None
    if index is not None:
        args = (db, resolver, variables, batch_id, dag_run_id, ds)
        refs = _ref_renderer(flow, spec, args, index, check_exists, depth)
    source_dataset, target_dataset = (
        db.qualified(flow.namespace, name) if name else None
        for name in (spec.source_dataset_id, spec.target_dataset_id)
    )
    context = template_context(
        flow_id=flow.id,
        task_id=spec.id,
        dag_run_id=dag_run_id,
        batch_id=batch_id,
        ds=ds,
        source_dataset=source_dataset,
        target_dataset=target_dataset,
        variables=variables,
        resolver=resolver,
        ref=refs,
        incremental=incremental,
    )
    own = str(spec.config.get("sql", ""))
    macros = index.macros if index is not None else None
    try:
        rendered = render_sql(source if source is not None else own, context, db.dialect, macros)
        return refs.finish(rendered) if refs is not None else rendered
    except TemplateError as exc:
        if exc.path is None and (source is None or source == own):
            # Point at the line of the flow file, as validation does.
            exc.path, exc.line = flow.shown_path, flow.sql_line(spec, exc.line or 1)
        exc.task_id = exc.task_id or spec.id
        raise


def _ref_renderer(
    flow: Flow,
    spec: TaskSpec,
    args: tuple[DatabaseService, PullResolver, dict[str, Any], int, str | None, str],
    index: ModelIndex,
    check_exists: bool,
    depth: int,
) -> RefRenderer:
    """The ``ref`` of one task; an ephemeral task it reads renders with the same ``args``."""
    db, resolver, *rest = args

    def ephemeral(found: Resolved) -> str:
        if depth >= MAX_DEPTH:
            raise TemplateError(f"ephemeral tasks read each other more than {MAX_DEPTH} deep")
        pulls = resolver if found.flow.id == flow.id else resolver.for_flow(found.flow.id)
        return render_task_sql(
            found.flow,
            found.task,
            db,
            pulls,
            *rest,  # type: ignore[arg-type]
            index=index,
            check_exists=check_exists,
            depth=depth + 1,
        )

    return RefRenderer(flow, spec, index, db, ephemeral, check_exists=check_exists)


def task_renderer(
    flow: Flow,
    spec: TaskSpec,
    db: DatabaseService,
    *,
    xcom: XComService | None,
    run_for_task: dict[str, str],
    variables: dict[str, Any],
    batch_id: int,
    dag_run_id: str,
    ds: str,
    index: ModelIndex | None = None,
) -> Callable[[str], str]:
    """What a task of a run calls to render a template (``TaskContext.render``).

    ``index`` (the project's flows and macros) defines ``ref()`` and the macros.
    """
    resolver = PullResolver(
        flow.id,
        dag_run_id,
        (lambda: xcom) if xcom is not None else None,
        run_for_task=run_for_task,
    )

    def render(source: str, incremental: bool = False) -> str:
        return render_task_sql(
            flow,
            spec,
            db,
            resolver,
            variables,
            batch_id,
            dag_run_id,
            ds,
            source,
            incremental=incremental,
            index=index,
            check_exists=index is not None,
        )

    return render
