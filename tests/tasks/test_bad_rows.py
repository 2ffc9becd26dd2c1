"""Bad input rows on every engine: named with their count, skipped, quarantined, bounded.

Each test loads into its own namespace (``unique_name``) and drops it afterwards. The
same file gives the same bad rows, lines, reasons and raw text on every engine, DuckDB
included (there DuckDB's own reject tables name them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.project import Project
from qarion_etl.run.model import RunResult
from qarion_etl.runner import FlowRunner, RunOptions
from tests.conftest import unique_name
from tests.runkit import drop_namespace, make_project, query, table, table_names, write_flow

FLOW = """
id = "bad"
namespace = "{ns}"

[input]
primary_key = ["id"]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "value", schema_type = "float"}},
  {{name = "note", schema_type = "string"}},
]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "landing"
[tasks.properties]
processing_type = "{ptype}"
[tasks.config]
path = "data/in.{fmt}"
format = "{fmt}"
{extra}
"""

GOOD = "id,value,note\n1,1.5,a\n2,2.5,b\n"

#: Three bad rows, one after a record of two lines (so lines and records differ).
BAD = """id,value,note
1,1.5,a
2,oops,b
3,2.5,"multi
line"
,3.5,c
4,4.5
5,5.5,e
"""

BAD_ROWS = [
    (3, "value", "'oops' is not a valid float", "2,oops,b"),
    (6, "id", "missing required value", ",3.5,c"),
    (7, None, "expected 3 fields, found 2", "4,4.5"),
]

NAMED = [
    "data/in.csv:3: column 'value': 'oops' is not a valid float",
    "data/in.csv:6: column 'id': missing required value",
    "data/in.csv:7: expected 3 fields, found 2",
]

REJECT_COLUMNS = "source_file, line, column_name, reason, raw_text, batch_id"


@pytest.fixture
def ns(engine_url: str) -> Iterator[str]:
    name = unique_name("bad")
    yield name
    drop_namespace(engine_url, name)


def _project(
    tmp_path: Path,
    engine_url: str,
    ns: str,
    extra: str = "",
    *,
    fmt: str = "csv",
    ptype: str = "FULL_REFRESH",
) -> Path:
    project = make_project(tmp_path, engine_url=engine_url, example=False)
    (project / "data").mkdir(exist_ok=True)
    write_flow(project, "bad", FLOW.format(ns=ns, ptype=ptype, fmt=fmt, extra=extra))
    return project


def _run(project: Path) -> RunResult:
    with Project.load(project / "qarion-etl.toml") as p:
        return FlowRunner(p).run("bad", RunOptions(max_workers=1))


def _ids(url: str, ns: str) -> list[int]:
    return [r[0] for r in query(url, f"SELECT id FROM {table(url, ns, 'landing')} ORDER BY id")]


def _rejects(url: str, ns: str) -> list[tuple[Any, ...]]:
    t = table(url, ns, "landing__rejects")
    return query(url, f"SELECT {REJECT_COLUMNS} FROM {t} ORDER BY batch_id, line")


def _error(result: RunResult) -> str:
    assert result.status == "failed"
    return result.tasks[0].error or ""


def test_fail_names_every_bad_row_and_keeps_the_previous_table(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    project = _project(tmp_path, engine_url, ns)
    path = project / "data" / "in.csv"
    path.write_text(GOOD)
    assert _run(project).ok
    path.write_text(BAD)
    error = _error(_run(project))
    assert "data/in.csv: 3 bad rows:\n" in error
    assert "\n".join(f"  {n}" for n in NAMED) in error
    assert "more" not in error
    assert _ids(engine_url, ns) == [1, 2]
    assert table_names(engine_url, ns) == ["landing"]


def test_fail_names_ten_rows_and_counts_the_rest(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns)
    rows = [f"{i},{'x' if i % 2 else i},n" for i in range(1, 2_470)]  # 1,235 bad values
    (project / "data" / "in.csv").write_text("id,value,note\n" + "\n".join(rows) + "\n")
    error = _error(_run(project))
    assert "data/in.csv: 1,235 bad rows:\n" in error
    named = [line for line in error.splitlines() if line.startswith("  data/in.csv:")]
    assert named == [
        f"  data/in.csv:{i + 1}: column 'value': 'x' is not a valid float" for i in range(1, 20, 2)
    ]
    assert "  … and 1,225 more" in error
    assert not table_names(engine_url, ns)


def test_skip_loads_the_good_rows(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "skip"')
    (project / "data" / "in.csv").write_text(BAD)
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert result.tasks[0].rows == 3
    assert result.tasks[0].result is not None
    assert result.tasks[0].result["rows_rejected"] == 3
    assert "rejects_dataset" not in result.tasks[0].result
    assert _ids(engine_url, ns) == [1, 3, 5]
    t = table(engine_url, ns, "landing")
    assert query(engine_url, f"SELECT note FROM {t} WHERE id = 3") == [("multi\nline",)]
    assert table_names(engine_url, ns) == ["landing"]


def test_clean_file_reports_no_rejected_rows(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns)
    (project / "data" / "in.csv").write_text(GOOD)
    result = _run(project)
    assert result.ok and result.tasks[0].result is not None
    assert result.tasks[0].result["rows_rejected"] == 0


def test_quarantine_writes_the_rejects_table(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "quarantine"')
    (project / "data" / "in.csv").write_text(BAD)
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert result.tasks[0].result is not None
    assert result.tasks[0].result["rows_rejected"] == 3
    assert result.tasks[0].result["rejects_dataset"] == "landing__rejects"
    assert _ids(engine_url, ns) == [1, 3, 5]
    assert _rejects(engine_url, ns) == [
        ("data/in.csv", line, column, reason, raw, result.batch_id)
        for line, column, reason, raw in BAD_ROWS
    ]
    assert table_names(engine_url, ns) == ["landing", "landing__rejects"]


def test_quarantine_full_refresh_replaces_and_incremental_appends(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "quarantine"')
    path = project / "data" / "in.csv"
    path.write_text(BAD)
    assert _run(project).ok
    path.write_text(GOOD + "3,bad,c\n")
    second = _run(project)
    assert second.ok, second.tasks[0].error
    assert _rejects(engine_url, ns) == [
        ("data/in.csv", 4, "value", "'bad' is not a valid float", "3,bad,c", second.batch_id)
    ]
    path.write_text(GOOD)
    assert _run(project).ok
    assert _rejects(engine_url, ns) == []  # FULL_REFRESH: the rejects of the file now loaded

    incremental = _project(
        tmp_path, engine_url, ns, 'on_bad_rows = "quarantine"', ptype="INCREMENTAL"
    )
    path.write_text(BAD)
    first = _run(incremental)
    path.write_text("id,value,note\n9,x,z\n10,10.5,j\n")
    again = _run(incremental)
    assert first.ok and again.ok, again.tasks[0].error
    rejects = _rejects(engine_url, ns)
    assert [(r[1], r[5]) for r in rejects] == [
        (3, first.batch_id),
        (6, first.batch_id),
        (7, first.batch_id),
        (2, again.batch_id),
    ]
    assert _ids(engine_url, ns) == [1, 2, 3, 5, 10]


def test_max_bad_rows_exceeded_fails_and_leaves_both_tables(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    extra = 'on_bad_rows = "quarantine"\nmax_bad_rows = 3'
    project = _project(tmp_path, engine_url, ns, extra)
    path = project / "data" / "in.csv"
    path.write_text(BAD)
    first = _run(project)
    assert first.ok, first.tasks[0].error  # 3 bad rows: not more than 3
    path.write_text(BAD + "6,six,f\n7,7.5,g,extra\n")
    error = _error(_run(project))
    assert "data/in.csv: 5 bad rows, more than max_bad_rows = 3:\n" in error
    assert "  data/in.csv:9: column 'value': 'six' is not a valid float" in error
    assert "  data/in.csv:10: expected 3 fields, found 4" in error
    assert _ids(engine_url, ns) == [1, 3, 5]
    assert len(_rejects(engine_url, ns)) == 3
    assert {r[5] for r in _rejects(engine_url, ns)} == {first.batch_id}
    assert table_names(engine_url, ns) == ["landing", "landing__rejects"]


def test_max_bad_rows_zero_with_skip(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "skip"\nmax_bad_rows = 0')
    (project / "data" / "in.csv").write_text(GOOD)
    assert _run(project).ok
    (project / "data" / "in.csv").write_text(GOOD + "3,x,c\n")
    error = _error(_run(project))
    assert "1 bad row, more than max_bad_rows = 0:\n  data/in.csv:4: column 'value'" in error


def test_jsonl_bad_rows_are_quarantined(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "quarantine"', fmt="jsonl")
    lines = [
        '{"id": 1, "value": 1.5, "note": "a"}',
        '{"id": "two", "value": 2.5}',
        "",
        '{"id": 3, "value": 3}',
        '{"value": 4.5, "note": "no id"}',
        "not json",
        "[5]",
        '{"id": 6, "value": "6.5", "note": "text value"}',
    ]
    (project / "data" / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert result.tasks[0].result is not None
    assert result.tasks[0].result["rows_rejected"] == 4
    assert _ids(engine_url, ns) == [1, 3, 6]
    rejects = _rejects(engine_url, ns)
    assert [r[1:4] for r in rejects] == [
        (2, "id", "'two' is not a valid integer"),
        (5, "id", "missing required value"),
        (6, None, "invalid JSON: Expecting value (column 1)"),
        (7, None, "each line must be a JSON object"),
    ]
    assert [r[4] for r in rejects] == [lines[1], lines[4], lines[5], lines[6]]
    assert {r[0] for r in rejects} == {"data/in.jsonl"}


def test_jsonl_fail_mode_names_the_rows(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, fmt="jsonl")
    (project / "data" / "in.jsonl").write_text(
        '{"id": 1, "value": 1.5}\n{"id": 2, "value": "x"}\n{"id": 3, "value": true}\n'
    )
    error = _error(_run(project))
    assert (
        "data/in.jsonl: 2 bad rows:\n"
        "  data/in.jsonl:2: column 'value': 'x' is not a valid float\n"
        "  data/in.jsonl:3: column 'value': True is not a valid float"
    ) in error
    assert not table_names(engine_url, ns)


def test_missing_required_string_is_a_bad_row(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "quarantine"')
    flow = project / "flows" / "bad.toml"
    flow.write_text(
        flow.read_text().replace(
            '{name = "note", schema_type = "string"}',
            '{name = "note", schema_type = "string", required = true}',
        )
    )
    (project / "data" / "in.csv").write_text('id,value,note\n1,1.5,a\n2,2.5,\n3,3.5,""\n4,,d\n')
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert _ids(engine_url, ns) == [1, 4]
    assert [r[1:5] for r in _rejects(engine_url, ns)] == [
        (3, "note", "missing required value", "2,2.5,"),
        (4, "note", "missing required value", '3,3.5,""'),
    ]


def test_crlf_file_lines_and_raw_text(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "quarantine"')
    data = 'id,value,note\r\n1,1.5,"two\r\nlines"\r\n\r\n2,x,b\r\n3,3.5,c\r\n'
    (project / "data" / "in.csv").write_bytes(data.encode())
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert _ids(engine_url, ns) == [1, 3]
    assert [r[1:5] for r in _rejects(engine_url, ns)] == [
        (5, "value", "'x' is not a valid float", "2,x,b"),
    ]


def test_duplicate_key_fails_even_when_skipping(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "skip"')
    (project / "data" / "in.csv").write_text(GOOD + "3,x,c\n2,9.5,dup\n")
    error = _error(_run(project))
    assert "data/in.csv:5: duplicate primary key (id=2), first seen on line 3" in error
    assert not table_names(engine_url, ns)


def test_parquet_missing_required_values_are_named_by_row(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    import duckdb

    project = _project(tmp_path, engine_url, ns, 'on_bad_rows = "quarantine"', fmt="parquet")
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM (VALUES (1, 1.5::DOUBLE, 'a'), (NULL, 2.5::DOUBLE, 'b'), (3, 3.5::DOUBLE, 'c')) "
        f"v(id, value, note)) TO '{project / 'data' / 'in.parquet'}' (FORMAT parquet)"
    )
    con.close()
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert _ids(engine_url, ns) == [1, 3]
    (reject,) = _rejects(engine_url, ns)
    assert reject[:4] == ("data/in.parquet", 2, "id", "missing required value")
    assert json.loads(reject[4]) == {"id": None, "value": 2.5, "note": "b"}
    (project / "data" / "in.parquet").unlink()


def test_duckdb_names_csv_bad_rows_without_reading_rows_in_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qarion_etl.tasks.formats import InputFile

    def no_python_reader(*args: object, **kwargs: object) -> None:
        raise AssertionError("the rows went through the Python reader")

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    project = _project(tmp_path, url, "ns", 'on_bad_rows = "quarantine"')
    (project / "data" / "in.csv").write_text(BAD)
    monkeypatch.setattr(InputFile, "reader", no_python_reader)
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert [r[1:5] for r in _rejects(url, "ns")] == BAD_ROWS


# --- the pieces, without an engine ---------------------------------------------------------


def test_bad_row_config_is_checked_by_validate(tmp_path: Path) -> None:
    from qarion_etl.definitions.flow_parser import load_flow
    from qarion_etl.definitions.validation import validate_flow
    from qarion_etl.errors import FlowValidationError

    project = _project(
        tmp_path, "sqlite:///x.db", "ns", 'on_bad_rows = "quarantin"\nmax_bad_rows = -1'
    )
    flow = project / "flows" / "bad.toml"
    with pytest.raises(FlowValidationError) as exc:
        validate_flow(load_flow(flow))
    lines = flow.read_text().splitlines()
    at = {
        key: lines.index(next(x for x in lines if x.startswith(key))) + 1
        for key in ("on_bad", "max_bad")
    }
    shown = [p.format("flows/bad.toml") for p in exc.value.problems]
    assert shown == [
        f"flows/bad.toml:{at['on_bad']}: task 'load': unknown on_bad_rows 'quarantin' "
        "(did you mean 'quarantine'?) (known: fail, skip, quarantine)",
        f"flows/bad.toml:{at['max_bad']}: task 'load': 'max_bad_rows' must be a whole number, "
        "0 or more, got -1",
    ]
    for extra, message in [
        ("max_bad_rows = 2.5", "'max_bad_rows' must be a whole number, 0 or more, got 2.5"),
        ("max_bad_rows = true", "'max_bad_rows' must be a whole number, 0 or more, got True"),
        ("max_bad_rows = 5", '\'max_bad_rows\' needs on_bad_rows = "skip" or "quarantine"'),
        ("on_bad_rows = 3", "unknown on_bad_rows 3"),
    ]:
        write_flow(
            project, "bad", FLOW.format(ns="ns", ptype="FULL_REFRESH", fmt="csv", extra=extra)
        )
        with pytest.raises(FlowValidationError) as exc:
            validate_flow(load_flow(flow))
        assert message in str(exc.value)
    write_flow(
        project,
        "bad",
        FLOW.format(
            ns="ns", ptype="FULL_REFRESH", fmt="csv", extra='on_bad_rows = "skip"\nmax_bad_rows = 0'
        ),
    )
    validate_flow(load_flow(flow))


def test_bad_rows_error_message_and_pickling() -> None:
    import pickle

    from qarion_etl.errors import IngestError
    from qarion_etl.tasks.bad_rows import BadRow, BadRowPolicy, BadRows, BadRowsError

    bad = BadRows("data/x.csv", BadRowPolicy("skip", max_rows=1))
    for i in range(12):
        bad.add(BadRow(i + 2, "v" if i % 2 else None, f"problem {i}", f"raw {i}"))
    with pytest.raises(BadRowsError) as exc:
        bad.check()
    assert isinstance(exc.value, IngestError)
    assert str(exc.value).splitlines() == [
        "data/x.csv: 12 bad rows, more than max_bad_rows = 1:",
        *(
            f"  data/x.csv:{i + 2}: {'column ' + repr('v') + ': ' if i % 2 else ''}problem {i}"
            for i in range(10)
        ),
        "  … and 2 more",
    ]
    again = pickle.loads(pickle.dumps(exc.value))
    assert str(again) == str(exc.value) and again.count == 12 and again.rows[0].raw == "raw 0"
    assert bad.pending == []  # skip keeps no rows to quarantine
    parquet = BadRows("x.parquet", by_row=True)
    parquet.add(BadRow(3, "id", "missing required value"))
    with pytest.raises(
        BadRowsError, match=r"^x\.parquet: 1 bad row:\n  x\.parquet: row 3: column 'id'"
    ):
        parquet.check()


def _reader_rows(text: str, tmp_path: Path, policy: str = "quarantine") -> tuple[list[Any], Any]:
    from qarion_etl.definitions.flow import ColumnSpec
    from qarion_etl.tasks.bad_rows import BadRowPolicy, BadRows
    from qarion_etl.tasks.readers import CsvOptions, csv_rows

    path = tmp_path / "in.csv"
    path.write_bytes(text.encode())
    bad = BadRows("in.csv", BadRowPolicy(policy))  # type: ignore[arg-type]
    cols = [ColumnSpec("id", "integer", required=True), ColumnSpec("v", "float")]
    reader = csv_rows(path, "in.csv", CsvOptions(), cols, bad, with_line=True)
    return [row for batch in reader.batches for row in batch], bad


def test_csv_lines_agree_with_the_csv_module_over_many_batches(tmp_path: Path) -> None:
    import csv
    import io

    from qarion_etl.tasks import csv_batches

    records = []
    for i in range(1, 25_000):
        v = "x" if i % 997 == 0 else "" if i % 5 == 0 else f"{i}.5"
        note = f'"a\r\nb{i}\rc\nd"' if i % 1_001 == 0 else "n"
        records.append(f"{i},{v},{note}" if i % 3_001 else "")
    text = "id,v,note\r\n" + "\r\n".join(records) + "\r\n"
    rows, bad = _reader_rows(text, tmp_path)
    expected = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    last = reader.line_num
    for record in reader:
        expected[record[0] if record else None] = last + 1
        last = reader.line_num
    assert [r[-1] for r in rows] == [expected[str(r[0])] for r in rows]
    assert [(b.line, b.raw) for b in bad.named] == [
        (expected[str(i)], f"{i},x,{'n' if i % 1001 else ''}") for i in range(997, 997 * 11, 997)
    ][: len(bad.named)]
    assert bad.count == 25 and len(rows) == 25_000 - 1 - 25 - 8
    assert csv_batches.BATCH_ROWS < 25_000  # several batches, fast and slow


def test_malformed_csv_records_are_bad_rows(tmp_path: Path) -> None:
    rows, bad = _reader_rows('id,v\n1,1\n2,"3"x\n4,4\n5,"open\n6,6\n', tmp_path)
    assert [r[0] for r in rows] == [1, 4]
    assert [(b.line, b.column, b.reason.split(":")[0], b.raw) for b in bad.named] == [
        (3, None, "malformed CSV", '2,"3"x'),
        (5, None, "malformed CSV", '5,"open\n6,6'),
    ]


def test_key_order_proves_unique_only_for_increasing_integers() -> None:
    from qarion_etl.tasks.keys import KeyOrder

    def increasing(*batches: list[tuple[Any, ...]]) -> bool:
        order = KeyOrder.of(["id", "v"], ["integer", "float"], ["id"])
        assert order is not None
        list(order.watch(list(batches)))
        return order.increasing

    assert increasing([(1, 0.0), (2, 0.0)], [], [(3, 0.0)])
    assert not increasing([(1, 0.0), (2, 0.0)], [(2, 0.0)])
    assert not increasing([(1, 0.0), (1, 0.0)])
    assert not increasing([(2, 0.0), (1, 0.0)])
    assert not increasing([(None, 0.0), (1, 0.0)])
    assert KeyOrder.of(["id"], ["string"], ["id"]) is None
    assert KeyOrder.of(["id"], ["integer"], []) is None
    both = KeyOrder.of(["a", "b"], ["integer", "integer"], ["a", "b"])
    assert both is not None
    list(both.watch([[(1, 5), (1, 6), (2, 0)]]))
    assert both.increasing


def test_line_finder_passes_over_line_breaks_before_a_record(tmp_path: Path) -> None:
    from qarion_etl.db.engines.duckdb_files import LineFinder

    path = tmp_path / "f.csv"
    path.write_bytes(b'h\r\n"a\r\nb"\r\n\r\nrow\r\nnext\n')
    finder = LineFinder(path)
    assert finder.line_at(11, b"row") == 5  # 11 and 12: the blank line before it
    assert finder.line_at(18, b"next") == 6
    assert finder.line_at(0, b"h") is None  # behind: not found
    finder.close()
    finder = LineFinder(path)
    assert finder.line_at(0, b"nope") is None
    finder.close()


_VALUES = st.sampled_from(
    ["1", "2.5", "", "x", '"q"', '"a\nb"', '"c\r\nd"', '"bad"x', '"open', "y\rz"]
)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(st.lists(_VALUES, min_size=0, max_size=4), max_size=30),
    batch=st.integers(1, 7),
)
def test_fast_and_slow_paths_agree_with_a_plain_reading(
    records: list[list[str]], batch: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import csv
    import io

    from qarion_etl.tasks import csv_batches
    from qarion_etl.tasks.convert import CONVERTERS

    text = "id,v,note\n" + "".join(",".join(r) + "\n" for r in records)
    tmp = tmp_path_factory.mktemp("csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(csv_batches, "BATCH_ROWS", batch)
        from qarion_etl.definitions.flow import ColumnSpec
        from qarion_etl.tasks.bad_rows import BadRowPolicy, BadRows
        from qarion_etl.tasks.readers import CsvOptions, csv_rows

        path = tmp / "in.csv"
        path.write_text(text)
        bad = BadRows("in.csv", BadRowPolicy("quarantine"))
        cols = [ColumnSpec("id", "integer", required=True), ColumnSpec("v", "float")]
        reader = csv_rows(path, "in.csv", CsvOptions(), cols, bad, extra=(7,))
        got = [row for b in reader.batches for row in b]
    want: list[tuple[Any, ...]] = []
    want_bad: list[tuple[int, str | None, str]] = []
    plain = csv.reader(io.StringIO(text, newline=""), strict=True)
    next(plain)
    last = plain.line_num
    while True:
        try:
            row = next(plain)
        except StopIteration:
            break
        except csv.Error as exc:
            want_bad.append((last + 1, None, f"malformed CSV: {exc}"))
            last = plain.line_num
            continue
        first, last = last + 1, plain.line_num
        if not row:
            continue
        if len(row) != 3:
            want_bad.append((first, None, f"expected 3 fields, found {len(row)}"))
            continue
        if row[0] == "":
            want_bad.append((first, "id", "missing required value"))
            continue
        try:
            ident = CONVERTERS["integer"](row[0])
        except ValueError:
            want_bad.append((first, "id", f"{row[0]!r} is not a valid integer"))
            continue
        try:
            value = None if row[1] == "" else CONVERTERS["float"](row[1])
        except ValueError:
            want_bad.append((first, "v", f"{row[1]!r} is not a valid float"))
            continue
        want.append((ident, value, row[2] or None, 7))
    assert got == want
    assert [(b.line, b.column, b.reason) for b in bad.pending] == want_bad
    assert bad.count == len(want_bad)
