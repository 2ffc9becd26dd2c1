"""Project macros: every ``macros/*.sql`` beside ``qarion-etl.toml``, loaded once.

Each file holds Jinja ``{% macro name(...) %}`` definitions. ``load_macros`` reads and
checks them without rendering (syntax, Python internals, one definition per name);
``validate`` then knows their names, and rendering (``run.rendering``) makes them callable
from every task's SQL, in the same sandboxed environment as the task's own template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qarion_etl.definitions.templates import find_internals, parse_template
from qarion_etl.errors import FlowValidationError, Problem, shown_path

#: The folder of macro files, beside the project file.
MACROS_DIR = "macros"


@dataclass(frozen=True, slots=True)
class MacroFile:
    """One ``macros/*.sql`` file and the macros it defines."""

    path: Path
    text: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Macros:
    """Every macro file of a project, and what is wrong with them."""

    files: tuple[MacroFile, ...] = ()
    errors: tuple[FlowValidationError, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        """Every macro name, callable from any task's SQL."""
        return frozenset(n for f in self.files for n in f.names)


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
    for macro in tree.find_all(nodes.Macro):
        if macro.name in seen:
            problems.append(
                Problem(f"macro '{macro.name}' is also defined in {seen[macro.name]}", macro.lineno)
            )
            continue
        seen[macro.name] = shown_path(path)
        names.append(macro.name)
    return MacroFile(path, text, tuple(names)), problems


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
