"""MySQL and MariaDB through PyMySQL: backticks, DDL that commits itself, no ``ON CONFLICT``.

Error kinds come from the error number (the first argument of PyMySQL's exceptions):
1064, 1149 -> ``syntax``; 1054, 1305 -> ``binder``; 1146, 1049, 1051 -> ``catalog``; 1264,
1265, 1292, 1366 -> ``type``; 1048, 1062, 1451, 1452 -> ``constraint``; 2003, 2006, 2013,
2055 -> ``lost_connection``; 1205 -> ``lock``; 3024, 1969 -> ``statement_timeout``; 1213 ->
``deadlock``; 1020 -> ``serialization``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qarion_etl.db.engines.base import Dialect, column_types_of

_KINDS = {
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


def _errno(error: BaseException) -> int | None:
    args: tuple[object, ...] = tuple(getattr(error, "args", ()))
    return args[0] if args and isinstance(args[0], int) else None


class MySQL(Dialect):
    name = "mysql"
    aliases = ("mariadb",)
    # DATETIME(6): microseconds, as the other engines keep them.
    column_types = column_types_of(
        "TEXT", "BIGINT", "DOUBLE", "DECIMAL(38, 10)", "BOOLEAN", "DATE", "DATETIME(6)"
    )
    identifier_quote = "`"
    begin_statement = "START TRANSACTION"
    paramstyle = "format"
    upsert_style = "on_duplicate_key"
    locking_read = " FOR UPDATE"
    swap_by_rename_table = True
    index_names_per_table = True
    table_options_prefix = "mysql"
    # Its TEXT holds 64 KB; with this length SQLAlchemy makes an XCom value LONGTEXT, 4 GB.
    long_text_length = 2**32 - 1
    is_server = True
    # rows_per_insert stays 1: PyMySQL already rewrites executemany into multi-row inserts.

    def escape_text(self, text: str) -> str:
        # The default SQL mode reads a backslash in a string literal as an escape.
        return super().escape_text(text).replace("\\", "\\\\")

    def upsert(
        self,
        insert: str,
        key: str,
        updated: Sequence[str],
        *,
        table: str | None = None,
        not_older: str | None = None,
    ) -> str:
        # No ON CONFLICT: the primary key decides the duplicate.
        if not_older is None:
            return f"{insert} ON DUPLICATE KEY UPDATE " + ", ".join(
                f"{c} = VALUES({c})" for c in updated
            )
        n = not_older
        ok = f"{n} <= VALUES({n}) OR VALUES({n}) = 0"
        # Assignments run left to right: the fence column goes last, so every test before
        # it reads the stored value.
        cols = [c for c in updated if c != n] + [n]
        return f"{insert} ON DUPLICATE KEY UPDATE " + ", ".join(
            f"{c} = IF({ok}, VALUES({c}), {c})" for c in cols
        )

    def swaps(self, tables: Sequence[tuple[str, str, str, str | None]]) -> list[str]:
        # DDL commits by itself, so DROP then RENAME would leave a moment with no table;
        # one RENAME TABLE of all of them is atomic.
        renames: list[str] = []
        drops: list[str] = []
        for target, staging, _, old in tables:
            if old is not None:
                renames.append(f"{target} TO {old}")
                drops.append(f"DROP TABLE {old}")
            renames.append(f"{staging} TO {target}")
        return [f"RENAME TABLE {', '.join(renames)}", *drops] if renames else []

    def autocommit(self, raw: Any) -> None:
        raw.rollback()  # PyMySQL: end what may be open, then switch
        raw.autocommit(True)

    def error_kind(self, error: BaseException) -> str:
        errno = _errno(error)
        return "other" if errno is None else _KINDS.get(errno, "other")

    def is_conflict(self, error: BaseException) -> bool:
        # InnoDB gives up a lock wait (1205) as it gives up a deadlock (1213): the whole
        # transaction again is the cure.
        return _errno(error) in (1205, 1213)
