"""A task's SQL file read back: its tries, their statements, and the user's statement.

``run.logs.TrySql`` writes ``.qarion/runs/<flow>/<run>/<task>.sql``: per try a header
line (``-- flow F, run R, task T, try N, <time>``), then each statement after a
``-- HH:MM:SS.mmmZ`` line and followed by ``-- ok in S s`` or ``-- failed after S s: …``
(and ``-- parameters: …`` when it had some). A transformation's own SELECT runs inside the
staging statement (``CREATE TABLE <schema>._qtmp_<target>_<token> AS <select>``) among
schema and transaction boilerplate; ``user_statement`` finds it, so a page can show the
statement the user wrote, rendered, before the rest of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qarion_etl.db.materialize import STAGING_PREFIX

_HEADER = re.compile(r"^-- flow .*, try (\d+), \S+$", re.M)
_SPLIT = re.compile(r"^-- (\d\d:\d\d:\d\d(?:\.\d+)?Z)\n", re.M)
_OUTCOME = re.compile(r"^-- (ok in [\d.]+ s|failed after [\d.]+ s: .*)$", re.M)
_PARAMETERS = re.compile(r"^-- parameters: .*$", re.M)
_STAGING = re.compile(r"^\s*CREATE\s+TABLE\s+(.+?)\s+AS\s+(.*)$", re.S | re.I)
#: Statements the runner issues around a task's own: transactions, schemas, catalog reads.
_BOILERPLATE = re.compile(
    r"^\s*(BEGIN|START\s+TRANSACTION|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET\s|PRAGMA\s"
    r"|CREATE\s+SCHEMA|DROP\s+TABLE\s+IF\s+EXISTS|ALTER\s+TABLE\s|SELECT\s+table_name\s+FROM"
    r"|SELECT\s+\S+\s+FROM\s+information_schema|SELECT\s+name\s+FROM\s+sqlite_master)",
    re.I,
)


@dataclass
class Statement:
    """One statement of a try, with when it started and how it ended."""

    sql: str
    at: str = ""
    outcome: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome.startswith("failed")


@dataclass
class SqlTry:
    number: int | None
    statements: list[Statement] = field(default_factory=list)


def parse(text: str) -> list[SqlTry]:
    """The tries of a task's SQL file, in order (a file without headers is one try)."""
    tries: list[SqlTry] = []
    pieces = _SPLIT.split(text)  # [before, stamp, after, stamp, after, …]

    def headers(chunk: str) -> None:
        if "-- flow " in chunk:
            tries.extend(SqlTry(int(found.group(1))) for found in _HEADER.finditer(chunk))

    headers(pieces[0])
    for at, body in zip(pieces[1::2], pieces[2::2], strict=True):
        end = _OUTCOME.search(body)
        sql = body if end is None else body[: end.start()]
        params = _PARAMETERS.search(sql)
        if params is not None:
            sql = sql[: params.start()]
        statement = Statement(
            sql.strip().removesuffix(";").rstrip(), at, end.group(1) if end else ""
        )
        if not tries:
            tries.append(SqlTry(None))
        tries[-1].statements.append(statement)
        if end is not None:
            headers(body[end.end() :])
    return tries


def user_statement(tries: list[SqlTry]) -> Statement | None:
    """The task's own statement in its last try that ran one: the SELECT of the staging
    ``CREATE TABLE … AS``, else the first statement that is not the runner's boilerplate."""
    for attempt in reversed(tries):
        for s in attempt.statements:
            staged = _STAGING.match(s.sql)
            if staged and STAGING_PREFIX in staged.group(1):
                return Statement(staged.group(2).strip(), s.at, s.outcome)
        for s in attempt.statements:
            if not _BOILERPLATE.match(s.sql):
                return s
    return None
