"""Project macros: every ``macros/*.sql`` beside ``qarion-etl.toml``, loaded once.

Each file holds Jinja ``{% macro name(...) %}`` definitions. ``load_macros`` reads and
checks them without rendering (syntax, Python internals, one definition per name);
``validate`` then knows their names, and rendering (``run.rendering``) makes them callable
from every task's SQL, in the same sandboxed environment as the task's own template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from qarion_etl.definitions.templates import find_internals, find_refs, parse_template
from qarion_etl.errors import FlowValidationError, Problem, shown_path

#: The folder of macro files, beside the project file.
MACROS_DIR = "macros"


@dataclass(frozen=True, slots=True)
class MacroFile:
    """One ``macros/*.sql`` file and the macros it defines."""

    path: Path
    text: str
    names: tuple[str, ...]
    #: Per macro: the ``ref()`` calls in its body with constant names, as
    #: ``(flow_id or None, dataset)``, and the names it calls (other macros among them).
    refs: Mapping[str, tuple[tuple[str | None, str], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    calls: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Macros:
    """Every macro file of a project, and what is wrong with them."""

    files: tuple[MacroFile, ...] = ()
    errors: tuple[FlowValidationError, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        """Every macro name, callable from any task's SQL."""
        return frozenset(n for f in self.files for n in f.names)

    def refs_of(self, name: str) -> tuple[tuple[str | None, str], ...]:
        """The constant ``ref()`` calls of macro ``name`` and of the macros it calls.

        A ref whose names are the macro's arguments is known only when it renders: it
        adds no edge (write the ``ref()`` in the task's SQL, or pass the table in).
        """
        refs: dict[str, tuple[tuple[str | None, str], ...]] = {}
        calls: dict[str, frozenset[str]] = {}
        for f in self.files:
            refs.update(f.refs)
            calls.update(f.calls)
        found: dict[tuple[str | None, str], None] = {}
        seen, todo = {name}, [name]
        while todo:
            current = todo.pop()
            found.update(dict.fromkeys(refs.get(current, ())))
            for callee in calls.get(current, frozenset()):
                if callee in refs and callee not in seen:
                    seen.add(callee)
                    todo.append(callee)
        return tuple(found)


def _read_one(path: Path, seen: dict[str, str]) -> tuple[MacroFile | None, list[Problem]]:
    import jinja2
    from jinja2 import nodes

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(f"cannot read macro file: {exc}")]
    try:
        tree = parse_template(text)
    except jinja2.TemplateSyntaxError as exc:
        return None, [Problem(f"macro file syntax error: {exc.message}", exc.lineno)]
    problems = [
        Problem(f"macro reaches for '{name}', a Python internal that templates cannot use", line)
        for name, line in find_internals(tree)
    ]
    names: list[str] = []
    refs: dict[str, tuple[tuple[str | None, str], ...]] = {}
    calls: dict[str, frozenset[str]] = {}
    for macro in tree.find_all(nodes.Macro):
        if macro.name in seen:
            problems.append(
                Problem(f"macro '{macro.name}' is also defined in {seen[macro.name]}", macro.lineno)
            )
            continue
        seen[macro.name] = shown_path(path)
        names.append(macro.name)
        refs[macro.name] = tuple(
            (c.flow_id, c.dataset) for c in find_refs(macro) if c.dataset is not None
        )
        calls[macro.name] = frozenset(
            c.node.name for c in macro.find_all(nodes.Call) if isinstance(c.node, nodes.Name)
        )
    found = MacroFile(path, text, tuple(names), MappingProxyType(refs), MappingProxyType(calls))
    return found, problems


def load_macros(root: Path) -> Macros:
    """The macros of the project in ``root`` (none when it has no ``macros/`` folder)."""
    folder = root / MACROS_DIR
    if not folder.is_dir():
        return Macros()
    files: list[MacroFile] = []
    errors: list[FlowValidationError] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.sql")):
        found, problems = _read_one(path, seen)
        if found is not None:
            files.append(found)
        if problems:
            errors.append(FlowValidationError(shown_path(path), problems))
    return Macros(tuple(files), tuple(errors))
