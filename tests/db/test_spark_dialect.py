"""The Spark dialect without a server: its URLs, its SQL for swaps and upserts, its error kinds.

The error kinds are read from pyspark's own exception classes, built as the Connect client
builds them from a server's answer (error class, SQLSTATE, gRPC status).
"""

from __future__ import annotations

import datetime as dt

import pytest

from qarion_etl.db.engines.spark import Spark, dialect_for, parse_url
from qarion_etl.db.errors import is_transient, sql_error
from qarion_etl.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "target", "ours", "theirs", "reads"),
    [
        ("sc://127.0.0.1:15002", "sc://127.0.0.1:15002", {}, {}, True),
        (
            "sc://spark.internal:15002/;token=abc",
            "sc://spark.internal:15002",
            {},
            {"token": "abc"},
            False,
        ),
        (
            "sc://spark.internal:15002/;table_format=delta;local_files=read",
            "sc://spark.internal:15002",
            {"table_format": "delta", "local_files": "read"},
            {},
            True,
        ),
        ("spark://local[2]", "local[2]", {}, {}, True),
        ("spark://local[*]/;local_files=send", "local[*]", {"local_files": "send"}, {}, False),
    ],
)
def test_urls(
    url: str, target: str, ours: dict[str, str], theirs: dict[str, str], reads: bool
) -> None:
    got = parse_url(url)
    assert got == (target, ours, theirs)
    assert dialect_for(got[0], got[1]).reads_local_files is reads


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("spark://yarn", "is not a Spark URL"),
        ("sc://h:1/;table_format=orc", "table_format must be one of parquet, delta, iceberg"),
        ("sc://h:1/;local_files=maybe", "local_files must be 'read' or 'send'"),
        ("sc://u:secret@h:1/;token", "option 'token' needs a value"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse_url(url)
    assert "secret" not in str(caught.value)


def test_parquet_swaps_rename_the_old_table_away_first() -> None:
    d = Spark()
    assert d.swaps(
        [("`n`.`t`", "`n`.`s`", "`t`", "`n`.`o`"), ("`n`.`r`", "`n`.`s2`", "`r`", None)]
    ) == [
        "ALTER TABLE `n`.`t` RENAME TO `n`.`o`",
        "ALTER TABLE `n`.`s` RENAME TO `t`",
        "ALTER TABLE `n`.`s2` RENAME TO `r`",
        "DROP TABLE `n`.`o`",
    ]
    # An upsert rewrites through the staged table, which is then swapped in.
    statements, swap = d.append("`n`.`t`", "`n`.`s`", ["id", "v"], ["id"])
    assert swap and statements == [
        "INSERT INTO `n`.`s` (`id`, `v`) SELECT `id`, `v` FROM `n`.`t` t "
        "WHERE NOT EXISTS (SELECT 1 FROM `n`.`s` s WHERE s.`id` <=> t.`id`)"
    ]
    statements, swap = d.append("`n`.`t`", "`n`.`s`", ["id", "v"], [])
    assert not swap and statements[0].startswith("INSERT INTO `n`.`t` (`id`, `v`) SELECT")


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_delta_and_iceberg_replace_and_merge(fmt: str) -> None:
    d = Spark(fmt)  # type: ignore[arg-type]
    assert not d.swap_by_rename_table
    assert d.swaps([("`n`.`t`", "`n`.`s`", "`t`", None)]) == [
        f"CREATE OR REPLACE TABLE `n`.`t` USING {fmt} AS SELECT * FROM `n`.`s`",
        "DROP TABLE `n`.`s`",
    ]
    statements, swap = d.append("`n`.`t`", "`n`.`s`", ["id", "v"], ["id"])
    assert not swap and statements == [
        "MERGE INTO `n`.`t` t USING `n`.`s` s ON s.`id` <=> t.`id` "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
        "DROP TABLE `n`.`s`",
    ]


def test_literals() -> None:
    d = Spark()
    assert d.literal("a'b\\c") == "'a\\'b\\\\c'"
    assert d.literal(dt.date(2024, 1, 15)) == "DATE '2024-01-15'"
    assert d.literal(dt.datetime(2024, 1, 15, 10, 30)) == "TIMESTAMP_NTZ '2024-01-15 10:30:00'"
    assert d.quote("a`b") == "`a``b`"


def _grpc_error(
    cls_name: str, message: str, sqlstate: str | None, status: str = "INTERNAL"
) -> BaseException:
    pytest.importorskip("pyspark")
    import grpc
    from pyspark.errors.exceptions import connect

    cls = getattr(connect, cls_name)
    return cls(
        message=message, sql_state=sqlstate, grpc_status_code=getattr(grpc.StatusCode, status)
    )


@pytest.mark.parametrize(
    ("cls", "message", "sqlstate", "status", "kind"),
    [
        (
            "ParseException",
            "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 2, pos 0)",
            "42601",
            "INTERNAL",
            "syntax",
        ),
        (
            "AnalysisException",
            "[UNRESOLVED_COLUMN.WITH_SUGGESTION] … `nope` … SQLSTATE: 42703; line 3 pos 7;",
            "42703",
            "INTERNAL",
            "binder",
        ),
        (
            "AnalysisException",
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `x` cannot be found.",
            "42P01",
            "INTERNAL",
            "catalog",
        ),
        (
            "NumberFormatException",
            "[CAST_INVALID_INPUT] The value 'abc' …",
            "22018",
            "INTERNAL",
            "type",
        ),
        (
            "AnalysisException",
            "[UNSUPPORTED_FEATURE.TABLE_OPERATION] … does not support DELETE.",
            "0A000",
            "INTERNAL",
            "syntax",
        ),
        (
            "SparkConnectGrpcException",
            "failed to connect to all addresses",
            None,
            "UNAVAILABLE",
            "lost_connection",
        ),
        (
            "SparkException",
            "Job aborted due to stage failure: ExecutorLostFailure (executor 1 exited)",
            "XX000",
            "INTERNAL",
            "lost_connection",
        ),
        (
            "SparkConnectGrpcException",
            "[INVALID_HANDLE.SESSION_NOT_FOUND] The handle … is invalid.",
            "HY000",
            "INTERNAL",
            "lost_connection",
        ),
    ],
)
def test_error_kinds_and_retry_classes(
    cls: str, message: str, sqlstate: str | None, status: str, kind: str
) -> None:
    error = _grpc_error(cls, message, sqlstate, status)
    if status == "UNAVAILABLE":
        error = type(error)(
            message=f"{message} StatusCode.UNAVAILABLE", grpc_status_code=error.getGrpcStatusCode()
        )  # type: ignore[attr-defined]
    assert Spark().error_kind(error) == kind
    assert is_transient(kind) is (kind == "lost_connection")
    mapped = sql_error(error, Spark(), "SELECT 1\nFROM x\nWHERE nope")
    assert mapped.kind == kind
    if "line 3 pos" in message:
        assert mapped.statement_line == 3
