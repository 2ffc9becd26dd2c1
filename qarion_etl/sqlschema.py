"""The metadata tables, described once: as SQLAlchemy Core tables and as plain DDL.

Databases reached through SQLAlchemy get the tables with ``MetaData.create_all``. The
native SQLite and DuckDB connections (``qarion_etl.native``) get the same tables from
``ddl()``, written as SQLAlchemy would write them for that dialect (a test reflects both
and compares), without importing SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Column kinds: ``str:<n>``, ``bigint``, ``int``, ``text``, ``longtext`` (LONGTEXT on
#: MySQL/MariaDB, whose TEXT holds only 64 KB) and ``datetime``.
_NATIVE_TYPES = {
    "sqlite": {
        "bigint": "BIGINT",
        "int": "INTEGER",
        "text": "TEXT",
        "longtext": "TEXT",
        "datetime": "DATETIME",
    },
    "duckdb": {
        "bigint": "BIGINT",
        "int": "INTEGER",
        "text": "TEXT",
        "longtext": "TEXT",
        "datetime": "TIMESTAMP WITHOUT TIME ZONE",
    },
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    nullable: bool = True
    primary_key: bool = False


@dataclass(frozen=True)
class TableSpec:
    """One table: columns, primary key and indexes ``(index name, column names)``."""

    name: str
    columns: tuple[Column, ...]
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    mysql_options: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self, dialect: str) -> list[str]:
        """``CREATE TABLE/INDEX IF NOT EXISTS`` statements for SQLite or DuckDB."""
        types = _NATIVE_TYPES[dialect]
        lines = []
        for c in self.columns:
            kind = f"VARCHAR({c.kind[4:]})" if c.kind.startswith("str:") else types[c.kind]
            not_null = c.primary_key or not c.nullable
            lines.append(f'"{c.name}" {kind}{" NOT NULL" if not_null else ""}')
        pk = [f'"{c.name}"' for c in self.columns if c.primary_key]
        if pk:
            lines.append(f"PRIMARY KEY ({', '.join(pk)})")
        out = [f'CREATE TABLE IF NOT EXISTS "{self.name}" ({", ".join(lines)})']
        for index, cols in self.indexes:
            out.append(
                f'CREATE INDEX IF NOT EXISTS "{index}" ON "{self.name}" '
                f"({', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)})"
            )
        return out

    def to_sqlalchemy(self, metadata: Any, dialect: str | None = None) -> Any:
        """The same table as a SQLAlchemy ``Table`` in ``metadata``.

        MySQL options are only named for MySQL/MariaDB (or when the dialect is not known):
        naming them makes SQLAlchemy import that dialect.
        """
        import sqlalchemy as sa

        mysql = dialect in (None, "mysql", "mariadb")

        def sa_type(kind: str) -> Any:
            if kind.startswith("str:"):
                return sa.String(int(kind[4:]))
            if kind == "longtext":
                if mysql:
                    # A length makes the MySQL dialect choose LONGTEXT (4 GB).
                    return sa.Text().with_variant(sa.Text(length=2**32 - 1), "mysql", "mariadb")
                return sa.Text()
            return {
                "bigint": sa.BigInteger,
                "int": sa.Integer,
                "text": sa.Text,
                "datetime": sa.DateTime,
            }[kind]()

        options: dict[str, Any] = (
            {f"mysql_{k}": v for k, v in self.mysql_options.items()} if mysql else {}
        )
        columns: list[Any] = [
            sa.Column(
                c.name,
                sa_type(c.kind),
                primary_key=c.primary_key,
                nullable=c.nullable and not c.primary_key,
                autoincrement=False,
            )
            for c in self.columns
        ]
        table = sa.Table(self.name, metadata, *columns, **options)
        for index, cols in self.indexes:
            sa.Index(index, *(table.c[c] for c in cols))
        return table
