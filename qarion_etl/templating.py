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


class _Refused(Exception):
    pass


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
        key = key_node.value if isinstance(key_node, nodes.Const) and isinstance(key_node.value, str) else None
        other = "flow_id" in kwargs and not (
            isinstance(kwargs["flow_id"], nodes.Const) and kwargs["flow_id"].value is None
        )
        yield PullRef(task_ids, key, other, "default" in kwargs, call.lineno)


def template_line(file_line: int | None, sql_raw_first_line_blank: bool, lineno: int) -> int | None:
    """Map a template line to a file line, given the line of ``sql = \"\"\"``."""
    if file_line is None:
        return None
    return file_line + lineno if sql_raw_first_line_blank else file_line + lineno - 1
