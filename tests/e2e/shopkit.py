"""The shop project of ``tests/fixtures/shop``: a private copy, its marts, and the rows the
marts must hold, worked out from the CSV files in plain Python (never by running the SQL).

Money is compared as ``Decimal`` rounded to the cent and dates as ISO strings, since the
engines hand back floats, decimals, dates or text for the same column.
"""

from __future__ import annotations

import csv
import datetime
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

SHOP = Path(__file__).resolve().parent.parent / "fixtures" / "shop"
METHODS = ("credit_card", "coupon", "bank_transfer", "gift_card")
STATUSES = ("placed", "shipped", "completed", "return_pending", "returned")
CUSTOMER_COLUMNS = (
    "customer_id",
    "first_name",
    "last_name",
    "first_order",
    "most_recent_order",
    "number_of_orders",
    "customer_lifetime_value",
)
ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "order_date",
    "status",
    *(f"{m}_amount" for m in METHODS),
    "amount",
)
CENT = Decimal("0.01")


def read_csv(name: str, folder: Path = SHOP / "data") -> list[dict[str, str]]:
    """The rows of ``data/<name>.csv`` as dictionaries of strings."""
    with (folder / f"{name}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def dollars(cents: int) -> Decimal:
    """Cents as dollars, exactly."""
    return (Decimal(cents) / 100).quantize(CENT)


def expected_orders(folder: Path = SHOP / "data") -> dict[int, tuple[Any, ...]]:
    """The ``orders`` mart by order id: the order, what each method paid, and the total."""
    paid: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METHODS, 0))
    for p in read_csv("raw_payments", folder):
        paid[int(p["order_id"])][p["payment_method"]] += int(p["amount"])
    rows = {}
    for o in read_csv("raw_orders", folder):
        oid = int(o["id"])
        by_method = paid[oid]
        amounts = tuple(dollars(by_method[m]) for m in METHODS)
        total = dollars(sum(by_method.values()))
        rows[oid] = (oid, int(o["user_id"]), o["order_date"], o["status"], *amounts, total)
    return rows


def expected_customers(folder: Path = SHOP / "data") -> dict[int, tuple[Any, ...]]:
    """The ``customers`` mart by customer id: first and last order, count, lifetime value."""
    owner = {int(o["id"]): int(o["user_id"]) for o in read_csv("raw_orders", folder)}
    dates: dict[int, list[str]] = defaultdict(list)
    for o in read_csv("raw_orders", folder):
        dates[int(o["user_id"])].append(o["order_date"])
    value: dict[int, int] = defaultdict(int)
    for p in read_csv("raw_payments", folder):
        value[owner[int(p["order_id"])]] += int(p["amount"])
    rows = {}
    for c in read_csv("raw_customers", folder):
        cid = int(c["id"])
        mine = dates.get(cid, [])
        first, last = (min(mine), max(mine)) if mine else (None, None)
        rows[cid] = (
            cid,
            c["first_name"],
            c["last_name"],
            first,
            last,
            len(mine),
            dollars(value[cid]),
        )
    return rows


def normalise(value: Any) -> Any:
    """One engine's value in the form the expected rows use."""
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return Decimal(str(value)).quantize(CENT)
    return value


def keyed(rows: list[tuple[Any, ...]]) -> dict[int, tuple[Any, ...]]:
    """Rows as the expected functions give them: by their first column, values normalised."""
    out = {}
    for row in rows:
        values = tuple(normalise(v) for v in row)
        out[int(values[0])] = (int(values[0]), *values[1:])
    return out


def copy_shop(
    dest: Path, engine_url: str, suffix: str, flows: dict[str, str] | None = None
) -> Path:
    """A copy of the shop project in ``dest`` on ``engine_url``, its namespaces ending in
    ``suffix`` (so runs on a shared server never meet); ``flows`` (file name -> text), when
    given, stand in for the project's own flow files."""
    shutil.copytree(SHOP, dest, ignore=shutil.ignore_patterns(".qarion", "*.duckdb*"))
    if flows is not None:
        for old in (dest / "flows").glob("*.toml"):
            old.unlink()
        for name, text in flows.items():
            (dest / "flows" / name).write_text(text)
    config = dest / "qarion-etl.toml"
    config.write_text(
        config.read_text()
        .replace('url = "duckdb:///warehouse.duckdb"', f'url = "{engine_url}"')
        .replace("sqlite:///.qarion/metadata.db", f"sqlite:///{dest / '.qarion' / 'metadata.db'}")
    )
    for flow in (dest / "flows").glob("*.toml"):
        text = flow.read_text()
        for ns in namespaces(""):
            text = text.replace(f'namespace = "{ns}"', f'namespace = "{ns}{suffix}"')
        flow.write_text(text)
    return dest


def namespaces(suffix: str) -> tuple[str, str]:
    """The namespaces of the seeds flow and of the shop flow."""
    return f"shop_raw{suffix}", f"shop{suffix}"


def drop_shop(url: str, suffix: str) -> None:
    """Remove the views and tables of both namespaces (schemas, or name prefixes)."""
    import sqlalchemy as sa

    from qarion_etl.db_service import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for ns in namespaces(suffix):
                if engine.dialect.name in ("postgresql", "duckdb"):
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{ns}" CASCADE')
                    continue
                q = engine.dialect.identifier_preparer.quote_identifier
                insp = sa.inspect(conn)
                for name in insp.get_view_names():
                    if name.startswith(ns + "__"):
                        conn.exec_driver_sql(f"DROP VIEW {q(name)}")
                for name in insp.get_table_names():
                    if name.startswith(ns + "__"):
                        conn.exec_driver_sql(f"DROP TABLE {q(name)}")
    finally:
        engine.dispose()
