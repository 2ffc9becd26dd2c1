"""The XCom values a ``row_count`` check compares with (``compare_to``).

``run = "previous"`` reads the value that ``task`` pushed in the newest earlier run of the
flow in which it succeeded; ``run = "current"`` reads the current run's value. No such run,
or no such value, is ``None``: the check then passes with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qarion_etl.run.model import TaskStatus

if TYPE_CHECKING:
    from qarion_etl.run.history import RunStore
    from qarion_etl.xcom import XComService

#: How many of a task's newest instances are searched for an earlier success.
HISTORY_DEPTH = 50


def previous_success(
    store: RunStore, flow_id: str, task_id: str, current: str | None
) -> str | None:
    """The newest run of ``flow_id`` other than ``current`` in which ``task_id`` succeeded."""
    for ti in store.task_history(flow_id, task_id, limit=HISTORY_DEPTH):
        if ti.status == TaskStatus.SUCCESS and ti.dag_run_id != current:
            return ti.dag_run_id
    return None


def value_puller(
    store: RunStore, xcom: XComService | None, flow_id: str, dag_run_id: str | None
) -> Callable[[str, str, str], Any] | None:
    """``pull(task_id, key, run)`` for the checks of a task of run ``dag_run_id``.

    With ``dag_run_id`` ``None`` (``qarion-etl check``, outside any run), ``current`` is the
    task's newest success and ``previous`` the one before it.
    """
    if xcom is None:
        return None

    def pull(task_id: str, key: str, run: str) -> Any:
        newest = dag_run_id or previous_success(store, flow_id, task_id, None)
        run_id = newest if run == "current" else previous_success(store, flow_id, task_id, newest)
        if run_id is None:
            return None
        return xcom.pull(task_id, key=key, dag_run_id=run_id, flow_id=flow_id, default=None)

    return pull
