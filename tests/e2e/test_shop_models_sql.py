"""The shop project's model SQL on its own, on the four engines: seeds created by hand, every
model rendered with plain Jinja (the project's macros, ``ref`` as the quoted table) and
built in flow order, and both marts compared with the rows worked out in Python.

This keeps the fixture's SQL portable apart from the runner: when the whole-project test
(``test_shop_project.py``) fails, this one says whether the SQL or the runner is at fault.
"""

from __future__ import annotations

import tomllib
from typing import Any

import jinja2

from tests.conftest import unique_name
from tests.e2e import shopkit
from tests.runkit import query

RAW_COLUMNS = {
    "raw_customers": {"id": "BIGINT", "first_name": "TEXT", "last_name": "TEXT"},
    "raw_orders": {"id": "BIGINT", "user_id": "BIGINT", "order_date": "DATE", "status": "TEXT"},
    "raw_payments": {
        "id": "BIGINT",
        "order_id": "BIGINT",
        "payment_method": "TEXT",
        "amount": "BIGINT",
    },
}


def _literal(value: str, kind: str) -> str:
    if kind == "BIGINT":
        return str(int(value))
    if kind == "DATE":
        return f"'{value}'"  # a string literal: every engine casts it on insert
    return "'" + value.replace("'", "''") + "'"


def _load_seeds(db: Any, conn: Any, raw_ns: str) -> None:
    for name, columns in RAW_COLUMNS.items():
        table = db.qualified(raw_ns, name)
        cols = ", ".join(f"{db.quote(c)} {t}" for c, t in columns.items())
        conn.exec_driver_sql(f"CREATE TABLE {table} ({cols})")
        rows = [
            "(" + ", ".join(_literal(r[c], t) for c, t in columns.items()) + ")"
            for r in shopkit.read_csv(name)
        ]
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES {', '.join(rows)}")


def _models() -> list[dict[str, Any]]:
    doc = tomllib.loads((shopkit.SHOP / "flows" / "shop.toml").read_text())
    return list(doc["tasks"])


def _render(sql: str, db: Any, raw_ns: str, shop_ns: str) -> str:
    macros = "".join(p.read_text() for p in sorted((shopkit.SHOP / "macros").glob("*.sql")))

    def ref(*names: str) -> str:
        return db.qualified(raw_ns if len(names) == 2 else shop_ns, names[-1])

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(macros + sql).render(ref=ref).strip()


def _build(url: str, raw_ns: str, shop_ns: str) -> None:
    from qarion_etl.db_service import DatabaseService

    db = DatabaseService(url)
    try:
        with db.begin() as conn:
            db.ensure_namespace(conn, raw_ns)
            db.ensure_namespace(conn, shop_ns)
            _load_seeds(db, conn, raw_ns)
            for task in _models():
                kind = "VIEW" if task.get("materialized") == "view" else "TABLE"
                target = db.qualified(shop_ns, task["target_dataset_id"])
                sql = _render(task["config"]["sql"], db, raw_ns, shop_ns)
                conn.exec_driver_sql(f"CREATE {kind} {target} AS {sql}")
    finally:
        db.close()


def test_expected_rows_cover_the_edge_cases() -> None:
    customers = shopkit.expected_customers()
    orders = shopkit.expected_orders()
    assert len(customers) == 100 and len(orders) == 100
    assert sum(1 for c in customers.values() if c[5] == 0) >= 5  # customers with no orders
    assert any(c[5] >= 3 for c in customers.values())
    assert {o[3] for o in orders.values()} == set(shopkit.STATUSES)
    methods = {p["payment_method"] for p in shopkit.read_csv("raw_payments")}
    assert methods == set(shopkit.METHODS)
    per_order = [int(p["order_id"]) for p in shopkit.read_csv("raw_payments")]
    assert any(per_order.count(o) >= 3 for o in set(per_order))
    assert any(o[-1] == 0 for o in orders.values())  # orders not paid yet
    assert sum(c[-1] for c in customers.values()) == sum(o[-1] for o in orders.values())


def test_models_on_each_engine(engine_url: str) -> None:
    suffix = "_" + unique_name("s")
    raw_ns, shop_ns = shopkit.namespaces(suffix)
    try:
        _build(engine_url, raw_ns, shop_ns)
        from tests.runkit import table

        customers = query(
            engine_url,
            f"SELECT {', '.join(shopkit.CUSTOMER_COLUMNS)} FROM {table(engine_url, shop_ns, 'customers')}",
        )
        orders = query(
            engine_url,
            f"SELECT {', '.join(shopkit.ORDER_COLUMNS)} FROM {table(engine_url, shop_ns, 'orders')}",
        )
    finally:
        shopkit.drop_shop(engine_url, suffix)
    assert shopkit.keyed(customers) == shopkit.expected_customers()
    assert shopkit.keyed(orders) == shopkit.expected_orders()
