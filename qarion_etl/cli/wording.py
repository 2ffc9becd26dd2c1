"""How the command line words the library's errors: with the flag or command that mends them.

The library's errors name what was asked and what was found, never a flag (an Airflow task
log has none). Here the command line adds its own words: ``--resume``, ``--flow``,
``qarion-etl runs list``.
"""

from __future__ import annotations

from qarion_etl.errors import (
    AmbiguousRun,
    BadBatchId,
    BadRunId,
    ClearNotSupported,
    FilesExist,
    QarionError,
    RunExists,
    RunNotFound,
    TaskNeedsRun,
    UsageError,
    clip,
)

#: The ``xcom clear`` option of each filter.
CLEAR_OPTIONS = {
    "flow_id": "--flow",
    "task_id": "--task",
    "dag_run_id": "--run",
    "batch_id": "--batch",
    "key": "--key",
    "older_than": "--older-than",
}


def cli_message(exc: QarionError) -> str:
    """``exc`` as the command line says it."""
    text = str(exc)
    if isinstance(exc, RunNotFound):
        return text if exc.run_id == "latest" else f"{text} (see qarion-etl runs list)"
    if isinstance(exc, AmbiguousRun):
        return f"{text}: name one with --flow"
    if isinstance(exc, RunExists):
        return f"{text} (use --resume {exc.dag_run_id} or --task to add to it)"
    if isinstance(exc, BadRunId):
        option = "--run-id" if exc.role == "run_id" else "--resume"
        return f"{option} {clip(exc.value)!r}: a run id is 1 to 250 printable characters"
    if isinstance(exc, BadBatchId):
        return f"--batch-id {clip(str(exc.value), 30)}: a batch id is {exc.low} to {exc.high}"
    if isinstance(exc, TaskNeedsRun):
        return "--task needs --run-id (the run this task belongs to)"
    if isinstance(exc, ClearNotSupported) and exc.required:
        options = ", ".join(CLEAR_OPTIONS.get(n, n) for n in exc.required)
        return f"{text}: narrow the clear with {options}"
    if isinstance(exc, FilesExist):
        return f"{text}; use --force to overwrite"
    return text


def family(exc: QarionError) -> str:
    """The error's kind as ``--json`` documents name it: ``UsageError`` for every request
    that cannot be done (its own class is given as ``kind``)."""
    return "UsageError" if isinstance(exc, UsageError) else type(exc).__name__
