"""Task implementations: ``TASK_TYPES`` maps a flow's ``type`` to the class that runs it.

What each type accepts (its config keys and checks) is declared in
``qarion_etl.definitions.task_types``, without any engine code; a test keeps the two
registries equal. Tasks import ``definitions`` and ``db``, never ``run``.
"""

from __future__ import annotations

from qarion_etl.tasks.base import BaseTask
from qarion_etl.tasks.ingestion import IngestionTask
from qarion_etl.tasks.transformation import TransformationTask

TASK_TYPES: dict[str, type[BaseTask]] = {
    "ingestion": IngestionTask,
    "transformation": TransformationTask,
}


def get_task_class(type_name: str) -> type[BaseTask]:
    """The class implementing task type ``type_name``."""
    return TASK_TYPES[type_name]
