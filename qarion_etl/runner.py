"""The README's import path for running flows from Python (they live in ``qarion_etl.run``).

::

    from qarion_etl.project import Project
    from qarion_etl.runner import FlowRunner, RunRequest

    with Project.load("qarion-etl.toml") as project:
        result = FlowRunner(project).run("data_pipeline", RunRequest())

``FlowRunner.run(flow, request, driver=...)`` takes how the run is driven (``Standalone``,
``SharedSlots``, ``Orchestrated``); ``run_flows`` runs several flows at once.
"""

from qarion_etl.run.drivers import Driver, Orchestrated, SharedSlots, Standalone
from qarion_etl.run.many import FlowsResult, run_flows
from qarion_etl.run.model import RunOptions, RunRequest, RunResult, TaskOutcome, TaskStatus
from qarion_etl.run.reporting import NullReporter, Reporter
from qarion_etl.run.runner import FlowRunner

__all__ = [
    "Driver",
    "FlowRunner",
    "FlowsResult",
    "NullReporter",
    "Orchestrated",
    "Reporter",
    "RunOptions",
    "RunRequest",
    "RunResult",
    "SharedSlots",
    "Standalone",
    "TaskOutcome",
    "TaskStatus",
    "run_flows",
]
