"""What ``ref()`` renders, and how an ephemeral task's SQL is inlined where it is read.

``RefRenderer`` is the ``ref`` of one task's template. A dataset a table-writing task
produces renders as the engine-quoted, namespaced table, the same text as
``{{ source_dataset }}``. In a run, a table of another flow that does not exist yet fails
the task with a message that names the upstream flow, before any SQL runs.

An ephemeral task writes nothing: where it is read, its rendered SELECT is inlined as a
parenthesised subquery with an alias, which every engine accepts (a subquery in ``FROM``
or ``JOIN`` needs an alias on PostgreSQL and MariaDB). The alias is the one the user wrote
after the call (``{{ ref('e') }} AS x`` or ``{{ ref('e') }} x``), else the dataset's own
name, so ``FROM {{ ref('e') }}`` works too; the user's own ``WITH`` clauses stay as they
are. ``inline_ephemerals`` puts the subqueries in once the whole template has rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from qarion_etl.definitions.refs import ModelIndex, RefError, Resolved
from qarion_etl.errors import QarionError, TemplateError

if TYPE_CHECKING:
    import jinja2

    from qarion_etl.db.connection import Connection
    from qarion_etl.db.service import DatabaseService
    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.definitions.macros import Macros

#: How deep ephemeral tasks may read each other (validation rejects cycles long before).
MAX_DEPTH = 32
#: Words that may follow a table in ``FROM``/``JOIN`` and are not an alias.
_NOT_ALIAS = frozenset(
    """where join inner left right full outer cross natural on using group order having
    limit offset union intersect except window qualify fetch for lateral straight_join
    sample tablesample use force ignore and or then else end when returning set values
    partition as with select from into""".split()
)
_TOKEN = "__qarion_ephemeral_{}__"
_ALIAS = r"""(\s+(?:(?i:AS)\s+)?("[^"]+"|`[^`]+`|[A-Za-z_][A-Za-z0-9_$]*))?"""


class RefRenderer:
    """``ref('dataset')`` / ``ref('flow_id', 'dataset')`` in the templates of one task.

    Args:
        flow: the task's flow.
        spec: the task.
        index: the project's flows (what a ref resolves against).
        db: the warehouse (its dialect quotes; in a run, it is asked whether tables exist).
        render_ephemeral: renders an ephemeral task's SQL (its own refs inlined).
        check_exists: whether a table of another flow must exist (a run, not ``render``).
    """

    def __init__(
        self,
        flow: Flow,
        spec: TaskSpec,
        index: ModelIndex,
        db: DatabaseService,
        render_ephemeral: Callable[[Resolved], str],
        *,
        check_exists: bool = False,
    ) -> None:
        self.flow, self.spec, self.index, self.db = flow, spec, index, db
        self.render_ephemeral = render_ephemeral
        self.check_exists = check_exists
        self.inlined: dict[str, tuple[str, str]] = {}  # token -> (SQL, dataset)

    def __call__(self, *names: Any) -> str:
        if not 1 <= len(names) <= 2 or not all(isinstance(n, str) and n for n in names):
            raise TemplateError(
                "ref() takes one or two names: ref('dataset') or ref('flow_id', 'dataset')"
            )
        flow_id, dataset = (None, names[0]) if len(names) == 1 else names
        shown = "ref(" + ", ".join(f"'{n}'" for n in names) + ")"
        try:
            found = self.index.resolve(self.flow, flow_id, dataset)
        except RefError as exc:
            raise TemplateError(f"{shown}: {exc}") from None
        if found.flow.id == self.flow.id and found.task.id == self.spec.id:
            raise TemplateError(f"{shown} is this task's own target: use {{{{ target_dataset }}}}")
        if found.ephemeral:
            token = _TOKEN.format(len(self.inlined))
            sql = self.render_ephemeral(found).strip().rstrip(";").strip()
            self.inlined[token] = (sql, found.dataset)
            return token
        table = self.db.qualified(found.flow.namespace, found.dataset)
        if self.check_exists and found.flow.id != self.flow.id:
            self._require_table(shown, found, table)
        return table

    def _require_table(self, shown: str, found: Resolved, table: str) -> None:
        with self.db.connect() as conn:
            exists = _published(conn, self.db, found)
        if not exists:
            raise TemplateError(
                f"{shown}: table {table} does not exist yet; flow '{found.flow.id}' "
                f"(task '{found.task.id}') writes it: run it first "
                f"(qarion-etl run {found.flow.id}, or run both with run --all)"
            )

    def finish(self, rendered: str) -> str:
        """``rendered`` with each ephemeral placeholder replaced by its aliased subquery."""
        return inline_ephemerals(rendered, self.inlined, self.db.dialect.quote)


def _published(conn: Connection, db: DatabaseService, found: Resolved) -> bool:
    """Whether the table or view ``found`` names is in the warehouse."""
    from qarion_etl.db.materialize import Namespace
    from qarion_etl.db.views import relation_kind

    return relation_kind(conn, Namespace(db, found.flow.namespace), found.dataset) is not None


class UpstreamTableMissing(QarionError):
    """Tasks of a run read tables of other flows that were never written: nothing runs."""

    exit_code = 1


def require_upstream_tables(
    index: ModelIndex, flow: Flow, task_ids: Iterable[str], db: DatabaseService
) -> None:
    """Raise ``UpstreamTableMissing`` when a task of ``task_ids`` reads, through ``ref()``
    (in its SQL or its checks), a table or view of another flow that does not exist.

    Made before a run starts, so that no task of it runs when one of them cannot; the
    render of each task checks again (a table dropped meanwhile).
    """
    reads = {
        (found.flow.id, found.dataset): found
        for tid in task_ids
        for found in index.reads(flow, flow.task(tid))
        if found.flow.id != flow.id and not found.ephemeral
    }
    if not reads:
        return
    with db.connect() as conn:
        missing = [f for f in reads.values() if not _published(conn, db, f)]
    if not missing:
        return
    shown = "; ".join(
        f"{db.qualified(f.flow.namespace, f.dataset)} (flow '{f.flow.id}', task '{f.task.id}')"
        for f in missing
    )
    flows = sorted({f.flow.id for f in missing})
    raise UpstreamTableMissing(
        f"flow '{flow.id}' reads tables of other flows that do not exist yet: {shown}; "
        "nothing of this run was started",
        path=flow.shown_path,
        hint=f"run {', '.join(flows)} first (qarion-etl run {flows[0]}), "
        "or run the flows together with run --all",
    )


def inline_ephemerals(
    rendered: str, inlined: dict[str, tuple[str, str]], quote: Callable[[str], str]
) -> str:
    """Replace each placeholder of ``inlined`` by ``(SQL) AS alias`` (see the module docstring)."""
    for token, (sql, dataset) in inlined.items():

        def subquery(m: re.Match[str], sql: str = sql, dataset: str = dataset) -> str:
            alias, rest = m.group(2), ""
            if alias is not None and alias.lower() in _NOT_ALIAS:
                alias, rest = None, m.group(1)
            indented = "\n".join("    " + line for line in sql.splitlines())
            return f"(\n{indented}\n) AS {alias or quote(dataset)}{rest}"

        rendered = re.sub(re.escape(token) + _ALIAS, subquery, rendered)
    return rendered


_MACRO_TEMPLATES: dict[tuple[int, str], jinja2.Template] = {}


def bind_macros(env: jinja2.Environment, macros: Macros, context: dict[str, Any]) -> None:
    """Add every macro of ``macros`` to ``context``, rendered in ``env`` with that context.

    Each file is compiled once per environment. Two passes, so a macro may call a macro of
    another file whatever their order.
    """
    for _ in range(2):
        for file in macros.files:
            key = (id(env), file.text)
            template = _MACRO_TEMPLATES.get(key)
            if template is None:
                template = _MACRO_TEMPLATES[key] = env.from_string(file.text)
            module = template.make_module(context)
            for name in file.names:
                context[name] = getattr(module, name)
