"""The run-history tables, and the move of a database from their first layout.

A run is identified by its flow and its run id (``(flow_id, dag_run_id)``), as Airflow's
runs are per DAG: two flows scheduled for the same moment get the same Airflow run id.
The first layout keyed runs and task instances by the run id alone;
``upgrade_first_layout`` moves such tables to the current keys, keeping every row
(rename, create, copy, drop; a move cut short is finished on the next use).
"""

from __future__ import annotations

from qarion_etl.db.schema import Column, TableSpec
from qarion_etl.db.service import DatabaseService

_ID = 250
_OLD = "_v1"  # suffix of a first-layout table while it is being moved


def run_tables(namespace: str) -> tuple[TableSpec, TableSpec, TableSpec]:
    """The runs, task instances and batches tables of ``namespace``."""
    ident = f"str:{_ID}"
    runs = TableSpec(
        f"{namespace}_runs",
        (
            Column("flow_id", ident, primary_key=True),
            Column("dag_run_id", ident, primary_key=True),
            Column("batch_id", "bigint", nullable=False),
            Column("status", "str:20", nullable=False),
            Column("started_at", "str:40", nullable=False),
            Column("ended_at", "str:40"),
            Column("summary", "text"),
        ),
        indexes=((f"ix_{namespace}_runs_by_run", ("dag_run_id",)),),
    )
    task_instances = TableSpec(
        f"{namespace}_task_instances",
        (
            Column("flow_id", ident, primary_key=True),
            Column("dag_run_id", ident, primary_key=True),
            Column("task_id", ident, primary_key=True),
            Column("batch_id", "bigint", nullable=False),
            Column("status", "str:20", nullable=False),
            Column("try_number", "int", nullable=False),
            Column("started_at", "str:40"),
            Column("ended_at", "str:40"),
            Column("rows", "bigint"),
            Column("error", "text"),
            Column("xcom_keys", "text"),
        ),
    )
    batches = TableSpec(
        f"{namespace}_batches",
        (
            Column("flow_id", ident, primary_key=True),
            Column("last_batch_id", "bigint", nullable=False),
        ),
    )
    return runs, task_instances, batches


def upgrade_first_layout(
    db: DatabaseService, specs: tuple[TableSpec, TableSpec, TableSpec]
) -> None:
    """Move runs and task instances keyed by the run id alone to the current keys."""
    runs, tis, _ = specs
    first_keys = {runs.name: ["dag_run_id"], tis.name: ["dag_run_id", "task_id"]}
    q = db.quote
    with db.connect() as conn:
        old = [
            t
            for t in (runs, tis)
            if db.has_table(conn, t.name)
            and not db.has_table(conn, t.name + _OLD)
            and db.primary_key(conn, t.name) == first_keys[t.name]
        ]
        moving = [t for t in (runs, tis) if db.has_table(conn, t.name + _OLD)]
    if old:
        with db.begin() as conn:
            for t in old:
                if t is runs and not db.dialect.index_names_per_table:
                    # DuckDB renames no table that has an index; elsewhere the name is freed.
                    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {q(f'ix_{runs.name}_flow_id')}")
                conn.exec_driver_sql(f"ALTER TABLE {q(t.name)} RENAME TO {q(t.name + _OLD)}")
        db.create_tables(list(specs))
    for t in {s.name: s for s in (*old, *moving)}.values():
        cols = ", ".join(q(c) for c in t.column_names)
        with db.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO {q(t.name)} ({cols}) SELECT {cols} FROM {q(t.name + _OLD)}"
            )
            conn.exec_driver_sql(f"DROP TABLE {q(t.name + _OLD)}")


def tries_table(namespace: str) -> TableSpec:
    """``<namespace>_task_tries``: every try of a task, written when it ends, with its error.

    A task instance holds the last try; this table keeps each try as it ends, so a retried
    or resumed task still shows why its earlier tries failed, even when the process that
    ran them was killed before the task ended. (Histories written before every try was
    kept hold only the tries that did not succeed; ``all_tries`` adds the last one.)
    """
    ident = f"str:{_ID}"
    return TableSpec(
        f"{namespace}_task_tries",
        (
            Column("flow_id", ident, primary_key=True),
            Column("dag_run_id", ident, primary_key=True),
            Column("task_id", ident, primary_key=True),
            Column("try_number", "int", primary_key=True),
            Column("status", "str:20", nullable=False),
            Column("started_at", "str:40"),
            Column("ended_at", "str:40"),
            Column("error", "text"),
        ),
    )


def plans_table(namespace: str) -> TableSpec:
    """``<namespace>_run_plans``: what each run set out to execute, as JSON (``run.plans``).

    Written once, when the run is first recorded; the pictures draw a run from it, not
    from the flow file as it is today.
    """
    ident = f"str:{_ID}"
    return TableSpec(
        f"{namespace}_run_plans",
        (
            Column("flow_id", ident, primary_key=True),
            Column("dag_run_id", ident, primary_key=True),
            Column("created_at", "str:40", nullable=False),
            Column("plan", "longtext", nullable=False),
        ),
    )
