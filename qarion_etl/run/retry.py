"""Which failures another try can mend: the retry policy of ``retries``.

An error that cannot pass on another try fails its task at once, whatever ``retries``
says, and the error ends with ``not retried: <why>``: SQL syntax, binder and catalog
errors, type errors and broken constraints (``db.errors`` names them per engine),
template errors, bad input rows and a missing input file, a result XCom cannot store,
and a wrong configuration. Transient errors (a lost connection, a lock or statement
timeout, a deadlock, a serialisation failure, a store that cannot be reached, the task's
own ``timeout_seconds``) and anything unknown follow ``retries``. ``retry_on = "any"``
on a task retries every error, as Airflow does.
"""

from __future__ import annotations

from qarion_etl.db.errors import is_transient
from qarion_etl.definitions.flow import TaskSpec
from qarion_etl.errors import (
    CheckFailed,
    ConfigError,
    FlowValidationError,
    IngestError,
    InputMissing,
    SqlError,
    Superseded,
    TemplateError,
    UsageError,
    XComValueError,
)

_KINDS = {
    "syntax": "a SQL syntax error",
    "binder": "a SQL binder error (an unknown column or function)",
    "catalog": "a SQL catalog error (an unknown table or schema)",
    "type": "a SQL type error",
    "constraint": "a broken constraint",
}


def not_retried(exc: BaseException, spec: TaskSpec) -> str | None:
    """Why ``exc`` is not worth another try of ``spec``, or ``None`` when it is."""
    if isinstance(exc, Superseded):
        return "a newer try of the task has started"
    if spec.retry_on == "any":
        return None
    if isinstance(exc, SqlError):
        if is_transient(exc.kind) is False:
            return f"{_KINDS.get(exc.kind, 'this error')} cannot pass on another try"
        return None
    if isinstance(exc, TemplateError):
        return "a template error cannot pass on another try"
    if isinstance(exc, CheckFailed):
        return "a failing data check cannot pass on another try of the same data"
    if isinstance(exc, InputMissing):
        return "the input file is missing"
    if isinstance(exc, IngestError):
        return "bad input rows cannot pass on another try"
    if isinstance(exc, XComValueError):
        return "XCom cannot store this result"
    if isinstance(exc, (ConfigError, FlowValidationError, UsageError)):
        return "the configuration is wrong"
    return None
