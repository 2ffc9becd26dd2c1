"""What a database error is: its whole message, its kind, and the line of the statement.

``sql_error(exc, dialect, statement)`` turns a driver's exception into an ``SqlError``
that keeps the driver's whole text (DuckDB's ``LINE n`` and caret, PostgreSQL's ``HINT``,
the candidate columns), says which kind of error it is and whether another try can pass,
and finds the line of the statement it is about: from the driver's ``LINE n``/``at line
n`` where it gives one, else from the one line of the statement that holds the name the
message quotes (SQLite and MySQL name the column or the token, not the line); Spark's
``line n pos m`` counts too.

The kinds (each engine's module says which of its errors is which, and its dialect's
``error_kind`` reads them; the README lists them too):

==================  ==============================================================
kind                what failed
==================  ==============================================================
syntax              the statement does not parse
binder              a column or function it names does not exist or is ambiguous
catalog             a table or schema it names does not exist (or already does)
type                a value does not fit its type
constraint          a row breaks a NOT NULL, unique or foreign key constraint
lost_connection     the connection to the server broke
lock                another transaction held a lock too long
statement_timeout   the server stopped a statement that ran too long
deadlock            the server broke a deadlock by giving up this transaction
serialization       the server gave up this transaction for a concurrent one
==================  ==============================================================

The first five cannot pass on another try; the last five are transient. Anything else is
``other`` and follows the task's ``retries``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from qarion_etl.errors import SqlError

if TYPE_CHECKING:
    from qarion_etl.db.engines.base import Dialect

PERMANENT = frozenset({"syntax", "binder", "catalog", "type", "constraint"})
TRANSIENT = frozenset({"lost_connection", "lock", "statement_timeout", "deadlock", "serialization"})

_LINE = re.compile(r"(?:^|\n)LINE (\d+):")
_AT_LINE = re.compile(r"\bat line (\d+)\b")
_LINE_POS = re.compile(r"\bline (\d+),? pos \d+\b")  # Spark: "line 3 pos 2", "(line 1, pos 0)"
_QUOTED = re.compile(r"""["'`]([^"'`\n]{1,200})["'`]""")
_SQLITE_NAME = re.compile(r"(?:no such (?:column|table|function)|near): ?\"?([^\"\s:]+)")


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception (SQLAlchemy wraps it as ``orig``)."""
    return getattr(exc, "orig", None) or exc


def driver_text(exc: BaseException) -> str:
    """The driver's whole message (PyMySQL's ``(errno, text)`` read as its text)."""
    orig = driver_error(exc)
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1].strip()
    text = str(orig).strip()
    return text or type(orig).__name__


def kind_of(exc: BaseException, dialect: Dialect) -> str:
    """The kind of a database error (see the module's table), ``other`` when unknown."""
    return dialect.error_kind(driver_error(exc))


def statement_line(text: str, statement: str | None) -> int | None:
    """The line of ``statement`` the message ``text`` is about (1-based), if it says."""
    for pattern in (_LINE, _AT_LINE, _LINE_POS):
        m = pattern.search(text)
        if m:
            return int(m.group(1))
    if not statement or "\n" not in statement:
        return 1 if statement else None
    names = [m.group(1) for m in _QUOTED.finditer(text.splitlines()[0])]
    names += [m.group(1) for m in _SQLITE_NAME.finditer(text)]
    lines = statement.splitlines()
    for name in names:
        bare = name.rsplit(".", 1)[-1]
        pattern = re.compile(rf"(?<![\w]){re.escape(bare)}(?![\w])", re.IGNORECASE)
        hits = [i for i, line in enumerate(lines, start=1) if pattern.search(line)]
        if len(hits) == 1:
            return hits[0]
    return None


def sql_error(
    exc: BaseException, dialect: Dialect, statement: str | None = None, what: str = "database"
) -> SqlError:
    """The ``SqlError`` for a driver's exception raised by ``statement``."""
    text = driver_text(exc)
    kind = kind_of(exc, dialect)
    first, _, rest = text.partition("\n")
    if kind == "lost_connection":
        first = f"lost the {what} connection: {first}"
    return SqlError(
        first.strip(),
        detail=rest.strip("\n"),
        kind=kind,
        statement=statement,
        statement_line=statement_line(text, statement),
    )


def is_transient(kind: str) -> bool | None:
    """``True`` for kinds another try can pass, ``False`` for those it cannot, else ``None``."""
    if kind in TRANSIENT:
        return True
    if kind in PERMANENT:
        return False
    return None


def describe(exc: BaseException) -> str:
    """A one-line message for any database error (its first line)."""
    return driver_text(exc).splitlines()[0]
