"""The metadata tables, described once: as SQLAlchemy Core tables and as plain DDL.

``DatabaseService.create_tables(specs)`` creates them on any database: the SQLAlchemy
source with ``MetaData.create_all`` (``to_sqlalchemy``), the native SQLite and DuckDB
source from ``ddl()``, written as SQLAlchemy would write it for that dialect (a test
reflects both and compares), without importing SQLAlchemy.

Column kinds: ``str:<n>``, ``bigint``, ``int``, ``text``, ``longtext`` (LONGTEXT on
MySQL/MariaDB, whose TEXT holds only 64 KB) and ``datetime``; each dialect's
``metadata_types`` names their SQL types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qarion_etl.db.engines import Dialect, all_dialects


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
    #: SQLAlchemy's dialect-specific table options by prefix: ``{"mysql": {"engine": …}}``.
    dialect_options: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self, dialect: Dialect) -> list[str]:
        """``CREATE TABLE/INDEX IF NOT EXISTS`` statements for a dialect with ``metadata_types``."""
        types, q = dialect.metadata_types, dialect.quote
        lines = []
        for c in self.columns:
            kind = f"VARCHAR({c.kind[4:]})" if c.kind.startswith("str:") else types[c.kind]
            not_null = c.primary_key or not c.nullable
            lines.append(f"{q(c.name)} {kind}{' NOT NULL' if not_null else ''}")
        pk = [q(c.name) for c in self.columns if c.primary_key]
        if pk:
            lines.append(f"PRIMARY KEY ({', '.join(pk)})")
        out = [f"CREATE TABLE IF NOT EXISTS {q(self.name)} ({', '.join(lines)})"]
        for index, cols in self.indexes:
            out.append(
                f"CREATE INDEX IF NOT EXISTS {q(index)} ON {q(self.name)} "
                f"({', '.join(q(c) for c in cols)})"
            )
        return out

    def to_sqlalchemy(self, metadata: Any, dialect: Dialect | None = None) -> Any:
        """The same table as a SQLAlchemy ``Table`` in ``metadata``.

        Table options (MySQL's engine and collation) are only named for the dialect they
        belong to, or when the dialect is not known: naming them makes SQLAlchemy import
        that dialect.
        """
        import sqlalchemy as sa

        # Unknown dialect: every dialect's options and types (SQLAlchemy picks its own).
        dialects = [dialect] if dialect is not None else list(all_dialects())
        long_text = [d for d in dialects if d.long_text_length]

        def sa_type(kind: str) -> Any:
            if kind.startswith("str:"):
                return sa.String(int(kind[4:]))
            if kind == "longtext":
                text: Any = sa.Text()
                for d in long_text:
                    text = text.with_variant(sa.Text(length=d.long_text_length), *d.names)
                return text
            return {
                "bigint": sa.BigInteger,
                "int": sa.Integer,
                "text": sa.Text,
                "datetime": sa.DateTime,
            }[kind]()

        options: dict[str, Any] = {
            f"{d.table_options_prefix}_{k}": v
            for d in dialects
            if d.table_options_prefix
            for k, v in self.dialect_options.get(d.table_options_prefix, {}).items()
        }
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
