"""Which errors another try can mend (``run.retry.not_retried``), one case per class."""

from __future__ import annotations

import pytest

from qarion_etl.definitions.flow import TaskSpec
from qarion_etl.errors import (
    ConfigError,
    IngestError,
    InputMissing,
    SqlError,
    StoreUnavailable,
    TemplateError,
    XComValueError,
)
from qarion_etl.run.retry import not_retried


def _sql(kind: str) -> SqlError:
    return SqlError("boom", kind=kind)


@pytest.mark.parametrize(
    ("exc", "why"),
    [
        (_sql("syntax"), "a SQL syntax error cannot pass on another try"),
        (_sql("binder"), "a SQL binder error (an unknown column or function) cannot pass"),
        (_sql("catalog"), "a SQL catalog error (an unknown table or schema) cannot pass"),
        (_sql("type"), "a SQL type error cannot pass on another try"),
        (_sql("constraint"), "a broken constraint cannot pass on another try"),
        (TemplateError("x"), "a template error cannot pass on another try"),
        (InputMissing("input file not found"), "the input file is missing"),
        (IngestError("2 bad rows"), "bad input rows cannot pass on another try"),
        (XComValueError("too big"), "XCom cannot store this result"),
        (ConfigError("bad"), "the configuration is wrong"),
    ],
)
def test_permanent_errors_are_not_retried(exc: BaseException, why: str) -> None:
    assert (not_retried(exc, TaskSpec("t", "transformation")) or "").startswith(why)
    assert not_retried(exc, TaskSpec("t", "transformation", retry_on="any")) is None


@pytest.mark.parametrize(
    "exc",
    [
        _sql("lost_connection"),
        _sql("deadlock"),
        _sql("serialization"),
        _sql("lock"),
        _sql("statement_timeout"),
        _sql("other"),
        StoreUnavailable("down"),
        RuntimeError("anything else"),
    ],
)
def test_transient_and_unknown_errors_follow_retries(exc: BaseException) -> None:
    assert not_retried(exc, TaskSpec("t", "transformation")) is None
