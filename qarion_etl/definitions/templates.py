"""SQL templates: the Jinja environment and the static checks ``validate`` makes.

Templates render in Jinja's immutable sandbox: a flow file may come from any hand in a
repository, and its SQL must not reach Python's internals (``__globals__``, ``__class__``
and every other name that starts with ``_``) nor change a value it is given. The
environment uses ``StrictUndefined`` and a ``finalize`` that refuses to paste ``None``,
a JSON object or a list into SQL. ``parse_template`` and ``find_pulls`` read a template
without rendering it (every ``xcom_pull`` call, its task ids, key and whether it names
another flow). Rendering for a run, and the quoting filters ``sql_literal`` and
``sql_identifier`` that come from the engine's dialect, are in ``qarion_etl.run.rendering``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import TemplateError, clip

if TYPE_CHECKING:
    import jinja2
    from jinja2 import nodes

PULL_NAMES = ("xcom_pull",)
TI_NAMES = ("ti", "task_instance")
#: Filters every SQL template may use; rendering supplies them with the engine's quoting.
FILTER_NAMES = ("sql_literal", "sql_identifier")


def _finalize(value: Any) -> Any:
    if value is None:
        raise TemplateError(
            "an expression rendered None into the SQL; pull a field with key='…' or ['field'], "
            "or give default=…"
        )
    if isinstance(value, (dict, list, tuple)):
        kind = "a JSON object" if isinstance(value, dict) else "a list"
        raise TemplateError(
            f"an expression rendered {kind} into the SQL ({clip(repr(value))}); "
            "pull one field with key='…' or index it with ['field']"
        )
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value


def make_environment(
    filters: Mapping[str, Callable[[Any], str]] | None = None,
) -> jinja2.Environment:
    """A sandboxed Jinja environment for SQL with qarion-etl's rules, and ``filters`` added."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters.update(filters or {})
    return env


@dataclass(frozen=True, slots=True)
class PullRef:
    """One ``xcom_pull`` call found in a template."""

    task_ids: tuple[str, ...] | None  # None when not a constant
    key: str | None
    other_flow: bool
    has_default: bool
    lineno: int


def _not_rendered(value: Any) -> str:
    raise AssertionError("templates are only parsed here, never rendered")


def is_plain(source: str) -> bool:
    """Whether ``source`` has no Jinja syntax at all: it renders as itself."""
    return "{{" not in source and "{%" not in source and "{#" not in source


def parse_template(source: str) -> nodes.Template:
    """Parse ``source``; raises ``jinja2.TemplateSyntaxError``."""
    return make_environment(dict.fromkeys(FILTER_NAMES, _not_rendered)).parse(source)


def find_pulls(tree: nodes.Template) -> Iterator[PullRef]:
    """Every ``xcom_pull(...)``, ``ti.xcom_pull(...)`` and ``task_instance.xcom_pull(...)`` call."""
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


@dataclass(frozen=True, slots=True)
class RefCall:
    """One ``ref('dataset')`` or ``ref('flow_id', 'dataset')`` call found in a template."""

    flow_id: str | None  # None for the one-argument form
    dataset: str | None  # None when not a constant string
    lineno: int

    @property
    def shown(self) -> str:
        """The call as written: ``ref('orders')`` or ``ref('shop', 'orders')``."""
        if self.flow_id is None:
            return f"ref('{self.dataset}')"
        return f"ref('{self.flow_id}', '{self.dataset}')"


def find_refs(tree: nodes.Node) -> Iterator[RefCall]:
    """Every ``ref(...)`` call: its flow (two-argument form) and dataset, when constants."""
    from jinja2 import nodes

    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "ref"):
            continue
        args = [a.value if isinstance(a, nodes.Const) else None for a in call.args]
        if call.kwargs or not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
            yield RefCall(None, None, call.lineno)
        elif len(args) == 1:
            yield RefCall(None, args[0], call.lineno)
        else:
            yield RefCall(args[0], args[1], call.lineno)


@dataclass(frozen=True, slots=True)
class VarRef:
    """One ``var('name')`` call found in a template."""

    name: str | None  # None when not a constant
    has_default: bool
    lineno: int


def find_vars(tree: nodes.Template) -> Iterator[VarRef]:
    """Every ``var(...)`` call: the variable's name and whether it has a default."""
    from jinja2 import nodes

    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "var"):
            continue
        first = call.args[0] if call.args else None
        name = (
            first.value if isinstance(first, nodes.Const) and isinstance(first.value, str) else None
        )
        has_default = len(call.args) > 1 or any(kw.key == "default" for kw in call.kwargs)
        yield VarRef(name, has_default, call.lineno)


#: Attributes the sandbox refuses on any object (besides the ``__dunder__`` names).
_INTERNAL = frozenset({"mro", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code"})


def find_internals(tree: nodes.Template) -> Iterator[tuple[str, int]]:
    """Each Python internal a template names, with its line.

    ``x.__name__``, ``x['__name__']``, ``x|attr('__name__')``, ``x.mro``: rendering
    refuses them (the sandbox); ``validate`` names them without rendering. A name with
    one leading ``_`` is left to the sandbox: it may be a field of a value
    (``xcom_pull('t')['_loaded_at']``), which renders.
    """
    from jinja2 import nodes

    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: Any = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            name = first.value if isinstance(first, nodes.Const) else None
        if isinstance(name, str) and (name.startswith("__") or name in _INTERNAL):
            yield name, node.lineno
