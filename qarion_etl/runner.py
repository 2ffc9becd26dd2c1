"""The README's import path for running flows from Python (they live in ``qarion_etl.run``).

::

    from qarion_etl.project import Project
    from qarion_etl.runner import FlowRunner, RunOptions

    with Project.load("qarion-etl.toml") as project:
        result = FlowRunner(project).run("data_pipeline", RunOptions())
"""

from qarion_etl.run.model import RunOptions, RunResult, TaskOutcome, TaskStatus
from qarion_etl.run.reporting import NullReporter, Reporter
from qarion_etl.run.runner import FlowRunner

__all__ = [
    "FlowRunner",
    "NullReporter",
    "Reporter",
    "RunOptions",
    "RunResult",
    "TaskOutcome",
    "TaskStatus",
]
