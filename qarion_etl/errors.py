"""The one exception tree of qarion-etl.

Every error a user can cause is a ``QarionError``; its ``exit_code`` is what the
command line exits with (design.md §6)::

    QarionError                      exit 1
    ├── TaskFailed                   exit 1   a task of a run failed
    ├── XComValueError (ValueError)  exit 1   a value does not fit its type or size
    ├── XComNotFound (LookupError)   exit 1   nothing matched a pull or a get
    ├── UsageError                   exit 2   a request that cannot be done as asked
    │   ├── FlowNotFound                          no such flow file or id
    │   ├── TaskNotFound                          no such task in the flow
    │   ├── RunNotFound                           no such run (or no run yet)
    │   ├── AmbiguousRun                          one run id in several flows
    │   ├── RunExists / RunInOtherFlow            a run id in use, or another flow's
    │   ├── RunStillRunning                       resuming a run whose process lives
    │   ├── BadRunId / BadBatchId                 an id no store can hold
    │   ├── TaskNeedsRun                          one task, without the run it belongs to
    │   ├── NotRenderable                         a task with no SQL to render
    │   ├── SelectionError                        a selection that matches nothing
    │   ├── ClearNotSupported                     a clear a backend cannot filter so
    │   ├── IdentityError                         an XCom identity part that is missing or bad
    │   ├── FilesExist                            a scaffold over existing files
    │   ├── CannotListen                          an address the UI cannot listen on
    │   └── MissingExtra                          an optional dependency not installed
    ├── ConfigError                  exit 2   qarion-etl.toml is wrong
    ├── FlowValidationError          exit 2   a flow file is wrong (carries every problem)
    ├── TemplateError                exit 2   a SQL template cannot be rendered
    ├── IngestError                  exit 1   a row of an input file is wrong
    ├── SqlError                     exit 1   the database refused a statement
    ├── CheckFailed                  exit 1   a data check of severity error found failing rows
    ├── TaskTimedOut                 exit 1   a try ran past its timeout_seconds
    ├── Superseded                   exit 1   a newer try of the task started (fencing)
    ├── Interrupted                  exit 130 the run was stopped (Ctrl-C, SIGTERM)
    ├── BackendLoadError             exit 3   an XCom backend cannot be imported or built
    └── StoreUnavailable             exit 3   engine, metadata database or XCom store unreachable

Errors carry optional location fields (``path``, ``line``, ``task_id``, ``key``) and
format them as ``flows/x.toml:12: task 'calc': key 'k': message``.

The library speaks its own language: a ``UsageError`` it raises names what was asked and
what was found, in fields, and its message names no command-line flag. Each face words it
in its own terms: the command line adds the flag or the command that mends it
(``cli/wording.py``); an Airflow task log shows the library's message as it is.

The wording helpers every message uses live here too: ``clip`` (shorten a name or a
value), ``did_you_mean`` (a suggestion from a list of choices), ``with_article`` and
``shown_path`` (a path as messages show it) and ``install_hint`` (how to add an extra).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def clip(text: str, limit: int = 60) -> str:
    """Shorten a name for a message, so one hostile id cannot flood the terminal."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def closest(name: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The choice most like ``name`` (``difflib``, as click's "did you mean"), if any is close."""
    import difflib  # 3 ms of start-up, needed only when a name is wrong

    found = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``name``, else ``""``."""
    match = closest(name, choices, cutoff=cutoff)
    return f" (did you mean '{match}'?)" if match else ""


def with_article(noun: str) -> str:
    """``noun`` with "a" or "an" before it."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def install_hint(extra: str) -> str:
    """The command that adds the optional dependencies ``extra`` (``airflow``, ``ui``).

    qarion-etl is installed from its source folder (it is not on a package index), so the
    command names that folder when this copy is installed from it (``pip install -e``).
    """
    import shlex

    source = Path(__file__).resolve().parent.parent
    if (source / "pyproject.toml").is_file():
        return f"pip install -e {shlex.quote(f'{source}[{extra}]')}"
    return f"pip install -e '.[{extra}]' in the qarion-etl source folder"


def shown_path(path: Path) -> str:
    """``path`` as messages show it: relative to the working folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class QarionError(Exception):
    """Base of every error a user can cause; never shown with a traceback."""

    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        task_id: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.task_id = task_id
        self.key = key
        self.hint = hint

    def location(self) -> str:
        parts = []
        if self.path:
            parts.append(f"{self.path}:{self.line}" if self.line else self.path)
        if self.task_id is not None:
            parts.append(f"task '{clip(self.task_id)}'")
        if self.key is not None:
            parts.append(f"key '{clip(self.key)}'")
        return ": ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword fields when an error crosses a process boundary.
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[QarionError], message: str, state: dict[str, Any]) -> QarionError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class UsageError(QarionError):
    """A request that cannot be done as asked (exit 2).

    Raised as one of the subclasses below by the library; the command line raises it
    itself for input only it parses.
    """

    exit_code = 2


class FlowNotFound(UsageError):
    """No flow file or flow id ``ref`` (``reason`` says what was found instead)."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(reason)
        self.ref = ref


class TaskNotFound(UsageError):
    """No task ``task_id`` in flow ``flow_id`` (with a suggestion from ``choices``)."""

    def __init__(self, task_id: str, flow_id: str, choices: Iterable[str] = ()) -> None:
        hint = did_you_mean(task_id, choices)
        super().__init__(f"no task '{clip(task_id)}' in flow '{flow_id}'{hint}")
        self.task = task_id
        self.flow_id = flow_id


class RunNotFound(UsageError):
    """No run ``run_id`` (of flow ``flow_id``); ``latest`` when the flow has no run yet."""

    def __init__(self, run_id: str, flow_id: str | None = None) -> None:
        of = f" of flow '{clip(flow_id)}'" if flow_id else ""
        text = f"no runs yet{of}" if run_id == "latest" else f"no run {clip(run_id)!r}{of}"
        super().__init__(text)
        self.run_id = run_id
        self.flow_id = flow_id


class AmbiguousRun(UsageError):
    """Several flows have a run with the id ``run_id``: the flow must be named."""

    def __init__(self, run_id: str, flows: Iterable[str]) -> None:
        self.run_id = run_id
        self.flows = sorted(flows)
        super().__init__(f"run '{clip(run_id)}' exists in several flows ({', '.join(self.flows)})")


class RunExists(UsageError):
    """A run with this id exists in the flow (a new run cannot take it)."""

    def __init__(self, flow_id: str, dag_run_id: str) -> None:
        super().__init__(f"a run with id '{clip(dag_run_id)}' already exists in flow '{flow_id}'")
        self.flow_id = flow_id
        self.dag_run_id = dag_run_id


class RunInOtherFlow(UsageError):
    """The run to resume belongs to another flow."""

    def __init__(self, run_id: str, flow_id: str, other_flow: str) -> None:
        super().__init__(f"run '{clip(run_id)}' belongs to flow '{other_flow}', not '{flow_id}'")
        self.run_id = run_id
        self.flow_id = flow_id
        self.other_flow = other_flow


class RunStillRunning(UsageError):
    """The run to resume is still running in a live process."""

    def __init__(self, run_id: str, pid: Any, host: Any) -> None:
        super().__init__(
            f"run '{clip(run_id)}' is still running (process {pid} on {host}): "
            "wait for it or stop it"
        )
        self.run_id = run_id
        self.pid = pid
        self.host = host


class BadRunId(UsageError):
    """A run id no store can hold (``role``: ``run_id`` or ``resume``)."""

    def __init__(self, value: str, role: str = "run_id") -> None:
        super().__init__(f"run id {clip(value)!r}: a run id is 1 to 250 printable characters")
        self.value = value
        self.role = role


class BadBatchId(UsageError):
    """A batch id outside the 64-bit range the stores keep."""

    def __init__(self, value: int, low: int, high: int) -> None:
        super().__init__(f"batch id {clip(str(value), 30)}: a batch id is {low} to {high}")
        self.value = value
        self.low = low
        self.high = high


class TaskNeedsRun(UsageError):
    """One task was asked for without the run it belongs to."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"running task '{clip(task_id)}' alone needs the run it belongs to")
        self.task = task_id


class NotRenderable(UsageError):
    """A task whose type has no SQL to render."""

    def __init__(self, task_id: str, task_type: str) -> None:
        super().__init__(
            f"task '{task_id}' is {with_article(task_type)} task: it has no SQL to render"
        )
        self.task = task_id
        self.task_type = task_type


class SelectionError(UsageError):
    """A selection criterion that matches nothing, is malformed, or leaves nothing to run."""


class ClearNotSupported(UsageError):
    """A backend's ``clear`` cannot apply the filters asked (or needs others).

    Attributes:
        backend: the backend class's name.
        unsupported: the filter it cannot apply (or ``None``).
        required: the filters it needs that were not given.
    """

    def __init__(
        self, backend: str, *, unsupported: str | None = None, required: Iterable[str] = ()
    ) -> None:
        self.backend = backend
        self.unsupported = unsupported
        self.required = list(required)
        if unsupported is not None:
            text = f"XCom backend {backend}.clear() cannot filter by {unsupported}"
        else:
            text = f"XCom backend {backend}.clear() needs {' and '.join(self.required)}"
        super().__init__(text)


class IdentityError(UsageError):
    """A part of an XCom identity (flow, task, key, run, batch) that is missing or unusable."""


class FilesExist(UsageError):
    """Files a scaffold would write exist already."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = [str(p) for p in paths]
        verb = "exists" if len(self.paths) == 1 else "exist"
        super().__init__(f"{', '.join(self.paths)} already {verb}")


class CannotListen(UsageError):
    """The web UI cannot listen on ``host:port`` (in use, not this machine's address)."""

    def __init__(self, host: str, port: int | None, reason: str) -> None:
        where = host if port is None else f"{host}:{port}"
        super().__init__(f"cannot listen on {where}: {reason}")
        self.host = host
        self.port = port


class MissingExtra(UsageError):
    """An optional dependency (``extra``) is not installed."""

    def __init__(self, extra: str, module: str, what: str, how: str | None = None) -> None:
        super().__init__(f"{what} needs {module}: {how or install_hint(extra)}")
        self.extra = extra
        self.module = module


class ConfigError(QarionError):
    """The project configuration is invalid."""

    exit_code = 2


class TemplateError(QarionError):
    """A SQL template cannot be rendered (syntax, undefined name, failed pull)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of flow validation."""

    message: str
    line: int | None = None
    task_id: str | None = None

    def format(self, path: str | None) -> str:
        parts = []
        if path:
            parts.append(f"{path}:{self.line}" if self.line else path)
        if self.task_id is not None:
            parts.append(f"task '{clip(self.task_id)}'")
        parts.append(self.message)
        return ": ".join(parts)


class FlowValidationError(QarionError):
    """A flow file has one or more problems; all of them are reported together."""

    exit_code = 2

    def __init__(self, path: str | Path, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else Problem("invalid flow")
        super().__init__(first.message, path=path, line=first.line, task_id=first.task_id)

    def __str__(self) -> str:
        return "\n".join(p.format(self.path) for p in self.problems)


class TaskFailed(QarionError):
    """A task of a run failed; ``cause`` is the underlying error."""

    exit_code = 1

    def __init__(self, task_id: str, cause: BaseException | str) -> None:
        self.cause = cause if isinstance(cause, str) else str(cause)
        # A cause that already says where (``flows/x.toml:42: task 'calc': …``) is kept as is.
        located = f"task '{clip(task_id)}':" in self.cause.partition("\n")[0]
        super().__init__(self.cause, task_id=None if located else task_id)


class XComValueError(QarionError, ValueError):
    """A value cannot be stored as an XCom (type, size or serialisation)."""


class XComNotFound(QarionError, LookupError):
    """No XCom matched."""


class IngestError(QarionError):
    """A row of an input file is wrong (fails its task)."""


class InputMissing(IngestError):
    """An ingestion's input file does not exist."""


class SqlError(QarionError):
    """The database refused a statement: the driver's first line, and the rest of its text.

    ``kind`` says what went wrong (``syntax``, ``binder``, ``catalog``, ``type``,
    ``constraint``, ``lost_connection``, ``lock``, ``statement_timeout``, ``deadlock``,
    ``serialization`` or ``other``: ``db.errors``); ``statement_line`` is the line of
    ``statement`` the driver points at, when it is known. ``str()`` shows the location,
    the first line, then every other line of the driver's message, indented.
    """

    def __init__(
        self,
        message: str,
        *,
        detail: str = "",
        kind: str = "other",
        statement: str | None = None,
        statement_line: int | None = None,
        **location: Any,
    ) -> None:
        super().__init__(message, **location)
        self.detail = detail
        self.kind = kind
        self.statement = statement
        self.statement_line = statement_line

    def __str__(self) -> str:
        hint, self.hint = self.hint, None
        try:
            text = super().__str__()
        finally:
            self.hint = hint
        lines = [text]
        lines += [f"  {line}".rstrip() for line in self.detail.splitlines()]
        if hint:
            lines.append(f"  hint: {hint}")
        return "\n".join(lines)


class CheckFailed(QarionError):
    """A data check of severity ``error`` failed: nothing was published (fails its task).

    ``results`` holds every check's result of the task (``tasks.checks.CheckResult.as_dict``),
    so the outputs can show them although the task pushed nothing.
    """

    def __init__(self, message: str, results: list[dict[str, Any]], **location: Any) -> None:
        super().__init__(message, **location)
        self.results = results


class TaskTimedOut(QarionError):
    """A try of a task ran longer than its ``timeout_seconds``."""


class Superseded(QarionError):
    """A newer try of the task has started: this try's writes are refused (fencing).

    An orchestrator retries a task whose worker it lost while the old try may still be
    running; the old try must not push values or publish a dataset over its successor's.
    """

    def __init__(self, task_id: str, mine: int, current: int) -> None:
        super().__init__(
            f"try {mine} was superseded by try {current}, which started after it: "
            "its values and datasets are not written",
            task_id=task_id,
        )
        self.mine = mine
        self.current = current


class Interrupted(QarionError):
    """The run was interrupted (Ctrl-C, SIGTERM) while a task ran."""

    exit_code = 130


class BackendLoadError(QarionError):
    """The configured XCom backend cannot be imported or constructed."""

    exit_code = 3


class StoreUnavailable(QarionError):
    """The engine, the metadata database or the XCom store cannot be reached."""

    exit_code = 3
