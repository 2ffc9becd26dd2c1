"""What a database error is: its whole message, its kind, and the line of the statement.

``sql_error(exc, dialect, statement)`` turns a driver's exception into an ``SqlError``
that keeps the driver's whole text (DuckDB's ``LINE n`` and caret, PostgreSQL's ``HINT``,
the candidate columns), says which kind of error it is and whether another try can pass,
and finds the line of the statement it is about: from the driver's ``LINE n``/``at line
n`` where it gives one, else from the one line of the statement that holds the name the
message quotes (SQLite and MySQL name the column or the token, not the line).

The kinds, per engine (the README lists them too):

==================  ==============================================================
kind                DuckDB / PostgreSQL (SQLSTATE) / MySQL, MariaDB (errno) / SQLite
==================  ==============================================================
syntax              ParserException / 42601 and other 42 / 1064, 1149 / "syntax error"
binder              BinderException / 42703, 42883, 42702 / 1054, 1305 / "no such column"
catalog             CatalogException / 42P01, 3F000, 42P06 / 1146, 1049, 1051 / "no such table"
type                ConversionException, OutOfRangeException / 22 / 1264, 1265, 1292, 1366
constraint          ConstraintException / 23 / 1048, 1062, 1451, 1452 / IntegrityError
lost_connection     (none) / 08, 57P01-57P03 / 2006, 2013, 2003, 2055 / (none)
lock                IOException "lock" / 55P03 / 1205 / "database is locked"
statement_timeout   (none) / 57014 / 3024, 1969 / (none)
deadlock            (none) / 40P01 / 1213 / (none)
serialization       TransactionException / 40001 / 1020 / (none)
==================  ==============================================================

The first five cannot pass on another try; the last five are transient. Anything else is
``other`` and follows the task's ``retries``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from qarion_etl.errors import SqlError

if TYPE_CHECKING:
    from qarion_etl.db.dialects import Dialect

PERMANENT = frozenset({"syntax", "binder", "catalog", "type", "constraint"})
TRANSIENT = frozenset({"lost_connection", "lock", "statement_timeout", "deadlock", "serialization"})

_DUCKDB = {
    "ParserException": "syntax",
    "SyntaxException": "syntax",
    "BinderException": "binder",
    "CatalogException": "catalog",
    "ConversionException": "type",
    "OutOfRangeException": "type",
    "ConstraintException": "constraint",
    "TransactionException": "serialization",
}
_PG_EXACT = {
    "42601": "syntax",
    "42703": "binder",
    "42883": "binder",
    "42702": "binder",
    "42P01": "catalog",
    "42P06": "catalog",
    "3F000": "catalog",
    "55P03": "lock",
    "57014": "statement_timeout",
    "40P01": "deadlock",
    "40001": "serialization",
    "57P01": "lost_connection",
    "57P02": "lost_connection",
    "57P03": "lost_connection",
}
_PG_CLASS = {"42": "syntax", "22": "type", "23": "constraint", "08": "lost_connection"}
_MYSQL = {
    1064: "syntax",
    1149: "syntax",
    1054: "binder",
    1305: "binder",
    1146: "catalog",
    1049: "catalog",
    1051: "catalog",
    1264: "type",
    1265: "type",
    1292: "type",
    1366: "type",
    1048: "constraint",
    1062: "constraint",
    1451: "constraint",
    1452: "constraint",
    2003: "lost_connection",
    2006: "lost_connection",
    2013: "lost_connection",
    2055: "lost_connection",
    1205: "lock",
    3024: "statement_timeout",
    1969: "statement_timeout",
    1213: "deadlock",
    1020: "serialization",
}
_SQLITE = (
    ("syntax error", "syntax"),
    ("incomplete input", "syntax"),
    ("no such column", "binder"),
    ("ambiguous column", "binder"),
    ("no such function", "binder"),
    ("wrong number of arguments", "binder"),
    ("no such table", "catalog"),
    ("already exists", "catalog"),
    ("database is locked", "lock"),
    ("database table is locked", "lock"),
)

_LINE = re.compile(r"(?:^|\n)LINE (\d+):")
_AT_LINE = re.compile(r"\bat line (\d+)\b")
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
    orig = driver_error(exc)
    names = [c.__name__ for c in type(orig).__mro__]
    for name in names:
        if name in _DUCKDB:
            return _DUCKDB[name]
    if "IOException" in names and "lock" in str(orig).lower():
        return "lock"
    sqlstate = getattr(orig, "sqlstate", None)
    if dialect.name == "postgresql" and isinstance(sqlstate, str):
        return _PG_EXACT.get(sqlstate) or _PG_CLASS.get(sqlstate[:2], "other")
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    if args and isinstance(args[0], int) and args[0] in _MYSQL:
        return _MYSQL[args[0]]
    if type(orig).__module__.startswith("sqlite3"):
        if "IntegrityError" in names:
            return "constraint"
        text = str(orig).lower()
        for needle, kind in _SQLITE:
            if needle in text:
                return kind
    return "other"


def statement_line(text: str, statement: str | None) -> int | None:
    """The line of ``statement`` the message ``text`` is about (1-based), if it says."""
    for pattern in (_LINE, _AT_LINE):
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
