"""The primary-key check finds a duplicate exactly when there is one, NULL keys included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.db_service import DatabaseService

KEY = st.one_of(st.none(), st.integers(-2, 2))
ROWS = st.lists(st.tuples(KEY, KEY), max_size=8)


@pytest.fixture(scope="module", params=["duckdb", "sqlite"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseService]:
    folder: Path = tmp_path_factory.mktemp(request.param)
    service = DatabaseService(f"{request.param}:///{folder / 'keys.db'}")
    yield service
    service.close()


@settings(max_examples=150, deadline=None)
@given(rows=ROWS)
def test_duplicate_found_exactly_when_a_key_repeats(
    db: DatabaseService, rows: list[tuple[int | None, int | None]]
) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql('DROP TABLE IF EXISTS "t"')
        conn.exec_driver_sql('CREATE TABLE "t" ("a" BIGINT, "b" BIGINT)')
        for row in rows:
            conn.exec_driver_sql('INSERT INTO "t" VALUES (?, ?)', row)
    for pk in (["a"], ["a", "b"]):
        keys = [row[: len(pk)] for row in rows]
        with db.connect() as conn:
            found = conn.exec_driver_sql(db.dialect.duplicate_key_sql('"t"', pk)).first()
        assert (found is not None) == (len(keys) != len(set(keys))), (rows, pk)
        if found is not None:
            assert keys.count(tuple(found)) > 1, (rows, pk, found)
