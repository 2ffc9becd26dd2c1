"""Running a task's data checks (``[[tasks.checks]]``) as SQL, one query per check.

Each check is a SELECT of its failing rows, wrapped so that the one query returns the
number of failing rows (a window ``COUNT(*) OVER ()``) and the first ``SAMPLE_ROWS`` of
them; no row is looped over in Python. The same SQL serves the four engines.

During a run, ``guard`` checks the staged table inside the write's transaction, before the
task publishes it: a failing ``error`` check raises ``CheckFailed`` and nothing is
published; a failing ``warn`` check is reported and the publish goes on. ``qarion-etl
check`` runs the same checks on the published tables (``run.check_runs``).

What each check reads:

- ``not_null``, ``accepted_values``, ``relationships``, ``expression`` and ``row_count``:
  the rows the task writes (for an ``INCREMENTAL`` task, its batch);
- ``unique``: the table as it will be after the publish: for an ``INCREMENTAL`` task whose
  target exists, the target's rows that the batch does not replace plus the batch.

``expression`` SQL may name the checked table as ``{{ target_dataset }}``: it renders as
the staged table during a run, and as the published one for ``qarion-etl check``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from qarion_etl.definitions.check_refs import resolve_ref
from qarion_etl.definitions.checks import CheckSpec
from qarion_etl.errors import CheckFailed, SqlError, clip

if TYPE_CHECKING:
    from qarion_etl.db.connection import Connection
    from qarion_etl.db.materialize import Stage
    from qarion_etl.db.service import DatabaseService
    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.definitions.refs import ModelIndex
    from qarion_etl.tasks.base import TaskContext

#: The failing rows a result keeps (and a failure names).
SAMPLE_ROWS = 10
_COUNT = "_qarion_failing"
PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class CheckResult:
    """The outcome of one check: ``status`` is ``pass``, ``warn`` or ``fail``."""

    name: str
    type: str
    column: str | None
    severity: str
    status: str
    failing: int
    sample: list[dict[str, Any]]
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckScope:
    """What the checks of one task read, and how.

    Args:
        relation: the checked table, as it goes after ``FROM`` (quoted, namespaced).
        published: the task's published table (``{{ target_dataset }}`` renders as it).
        merged: ``unique``'s rows for the given columns, as a parenthesised SELECT, when
            they are more than ``relation`` (an incremental write into an existing table).
        render: renders an ``expression`` check's SQL template.
        pull_value: the XCom value a ``row_count``'s ``compare_to`` names, else ``None``.
        scrub: masks secrets in a sample value.
        proven: checks the write already guarantees, by ``(type, sorted columns)``, with
            the reason (an ingestion refuses duplicate primary keys and missing required
            values): they pass without a query.
    """

    db: DatabaseService
    flow: Flow
    spec: TaskSpec
    relation: str
    published: str
    merged: Callable[[Sequence[str]], str] | None = None
    render: Callable[[str], str] | None = None
    pull_value: Callable[[str, str, str], Any] | None = None
    scrub: Callable[[str], str] = lambda text: text
    proven: Mapping[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    #: The project's flows, which a ``relationships`` check's ``to`` names.
    index: ModelIndex | None = None


def run_checks(conn: Connection, scope: CheckScope) -> list[CheckResult]:
    """Every check of ``scope.spec``, in order, on ``conn``."""
    return [run_check(conn, check, scope) for check in scope.spec.checks]


def run_check(conn: Connection, check: CheckSpec, scope: CheckScope) -> CheckResult:
    """One check: one query, its failing count and sample."""
    if check.type == "row_count":
        return _row_count(conn, check, scope)
    reason = scope.proven.get((check.type, tuple(sorted(check.columns))))
    if reason is not None:
        return _result(check, 0, [], reason)
    sql = failing_sql(check, scope)
    wrapped = f"SELECT _qf.*, COUNT(*) OVER () AS {_COUNT} FROM ({sql}) AS _qf LIMIT {SAMPLE_ROWS}"
    try:
        with scope.db.errors(wrapped):
            result = conn.exec_driver_sql(wrapped)
            names = list(result.keys())
            rows = result.fetchall()
    except SqlError as exc:
        exc.message = f"check '{check.name}': {exc.message}"
        exc.path, exc.line, exc.task_id = scope.flow.shown_path, check.line, scope.spec.id
        raise
    failing = int(rows[0][-1]) if rows else 0
    sample = [_row(names[:-1], row[:-1], scope.scrub) for row in rows]
    return _result(check, failing, sample)


def _result(
    check: CheckSpec, failing: int, sample: list[dict[str, Any]], note: str | None = None
) -> CheckResult:
    status = PASS if failing == 0 else (WARN if check.severity == "warn" else FAIL)
    return CheckResult(
        check.name, check.type, check.column, check.severity, status, failing, sample, note
    )


def failing_sql(check: CheckSpec, scope: CheckScope) -> str:
    """The SELECT of ``check``'s failing rows (all but ``row_count``)."""
    q = scope.db.dialect.quote
    rel = scope.relation
    cols = [q(c) for c in check.columns]
    if check.type == "not_null":
        return f"SELECT * FROM {rel} AS _qr WHERE {cols[0]} IS NULL"
    if check.type == "unique":
        source = scope.merged(check.columns) if scope.merged is not None else rel
        listed = ", ".join(cols)
        present = " AND ".join(f"{c} IS NOT NULL" for c in cols)
        return (
            f"SELECT {listed}, COUNT(*) AS {q('rows')} FROM {source} AS _qr "
            f"WHERE {present} GROUP BY {listed} HAVING COUNT(*) > 1"
        )
    if check.type == "accepted_values":
        values = ", ".join(scope.db.dialect.literal(v) for v in check.values)
        return f"SELECT * FROM {rel} AS _qr WHERE {cols[0]} IS NOT NULL AND {cols[0]} NOT IN ({values})"
    if check.type == "relationships":
        assert check.to_dataset is not None and check.field is not None
        namespace, dataset = resolve_ref(scope.flow, check.to_flow, check.to_dataset, scope.index)
        parent = scope.db.qualified(namespace, dataset)
        return (
            f"SELECT _qr.* FROM {rel} AS _qr WHERE _qr.{cols[0]} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {parent} AS _qp WHERE _qp.{q(check.field)} = _qr.{cols[0]})"
        )
    assert check.sql is not None
    sql = scope.render(check.sql) if scope.render is not None else check.sql
    if scope.relation != scope.published:
        sql = sql.replace(scope.published, scope.relation)
    return sql.strip().rstrip(";").strip()


def _row_count(conn: Connection, check: CheckSpec, scope: CheckScope) -> CheckResult:
    rows = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {scope.relation} AS _qr").scalar_one())
    problems = []
    if check.min is not None and rows < check.min:
        problems.append(f"{rows:,} rows, fewer than min {check.min:,}")
    if check.max is not None and rows > check.max:
        problems.append(f"{rows:,} rows, more than max {check.max:,}")
    note = None
    cmp = check.compare_to
    if cmp is not None and check.within_percent is not None:
        before = scope.pull_value(cmp.task, cmp.key, cmp.run) if scope.pull_value else None
        where = f"{cmp.task}.{cmp.key} of the {cmp.run} run"
        if before is None:
            note = f"no value of {where} to compare with: passed"
        elif isinstance(before, bool) or not isinstance(before, (int, float)):
            problems.append(f"{where} is not a number ({clip(repr(before))})")
        else:
            allowed = abs(before) * check.within_percent / 100
            note = f"{rows:,} rows against {before:,} ({where}), within {check.within_percent:g}%"
            if abs(rows - before) > allowed:
                problems.append(
                    f"{rows:,} rows, not within {check.within_percent:g}% of {before:,} ({where})"
                )
    if not problems:
        return _result(check, 0, [], note or f"{rows:,} rows")
    return _result(check, 1, [{"rows": rows}], "; ".join(problems))


def _row(names: list[str], row: Sequence[Any], scrub: Callable[[str], str]) -> dict[str, Any]:
    return {name: _plain(value, scrub) for name, value in zip(names, row, strict=True)}


def _plain(value: Any, scrub: Callable[[str], str]) -> Any:
    """A sample value fit for JSON and for a terminal: clipped, secrets masked."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).hex()
    return clip(scrub(str(value)), 80)


def failure_text(results: Sequence[CheckResult | dict[str, Any]]) -> str:
    """The message of a failed check run: each failing ``error`` check, its count and rows."""
    found = [r if isinstance(r, dict) else r.as_dict() for r in results]
    failed = [d for d in found if d["status"] == FAIL]
    lines = [
        f"{len(failed)} of {len(found)} check{'s' if len(found) != 1 else ''} failed: "
        "the dataset was not published"
    ]
    for d in failed:
        what = f"{d['type']} on {d['column']}" if d["column"] else d["type"]
        n = d["failing"]
        count = d["note"] if d["type"] == "row_count" else f"{n:,} failing row{'s' * (n != 1)}"
        lines.append(f"  check '{d['name']}' ({what}): {count}")
        if d["type"] != "row_count":
            lines += [f"    {_sample_text(s)}" for s in d["sample"]]
            if n > len(d["sample"]):
                lines.append(f"    ... and {n - len(d['sample']):,} more")
    return "\n".join(lines)


def _sample_text(sample: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sample.items())


def guard(
    ctx: TaskContext,
    conn: Connection,
    stage: Stage,
    primary_key: Sequence[str],
    proven: Mapping[tuple[str, tuple[str, ...]], str] | None = None,
) -> list[dict[str, Any]]:
    """Run the task's checks on ``stage`` before it is published (see the module docstring).

    Returns every check's result; raises ``CheckFailed`` when an ``error`` check fails.
    ``proven``: see ``CheckScope``.
    """
    spec = ctx.spec
    if not spec.checks:
        return []
    merged = None
    if ctx.processing_type == "INCREMENTAL" and stage.ns.exists(conn, stage.target):
        merged = _merged(stage, primary_key)
    scope = CheckScope(
        ctx.db,
        ctx.flow,
        spec,
        stage.table,
        stage.ns.qualified(stage.target),
        merged=merged,
        render=ctx.render,
        pull_value=ctx.pull_value,
        scrub=ctx.scrub,
        proven=proven or {},
        index=ctx.models,
    )
    results = run_checks(conn, scope)
    if any(r.status == FAIL for r in results):
        raise CheckFailed(
            failure_text(results),
            [r.as_dict() for r in results],
            path=ctx.flow.shown_path,
            line=next(
                c.line for c, r in zip(spec.checks, results, strict=True) if r.status == FAIL
            ),
            task_id=spec.id,
        )
    return [r.as_dict() for r in results]


def load_guarantees(
    primary_key: Sequence[str], required: Sequence[str]
) -> dict[tuple[str, tuple[str, ...]], str]:
    """What an ingestion's load already guarantees: keys unique, required values present."""
    proven: dict[tuple[str, tuple[str, ...]], str] = {
        ("not_null", (c,)): f"guaranteed by the load: '{c}' is required" for c in required
    }
    if primary_key:
        proven[("unique", tuple(sorted(primary_key)))] = (
            "guaranteed by the load: the primary key admits no duplicate"
        )
    return proven


def _merged(stage: Stage, primary_key: Sequence[str]) -> Callable[[Sequence[str]], str]:
    """The rows of the target after an incremental publish, for ``unique`` on some columns."""
    q = stage.ns.db.dialect.quote
    target = stage.ns.qualified(stage.target)

    def rows(columns: Sequence[str]) -> str:
        listed = ", ".join(q(c) for c in columns)
        kept = f"SELECT {listed} FROM {target} AS _qt"
        if primary_key:
            same = " AND ".join(f"_qs.{q(k)} = _qt.{q(k)}" for k in primary_key)
            kept += f" WHERE NOT EXISTS (SELECT 1 FROM {stage.table} AS _qs WHERE {same})"
        return f"({kept} UNION ALL SELECT {listed} FROM {stage.table})"

    return rows
