"""Task implementations: ``TASK_TYPES`` maps a flow's ``type`` to the class that runs it.

What each type accepts (its config keys and checks) is declared in
``qarion_etl.definitions.task_types``, without any engine code; a test keeps the two
registries equal. Tasks import ``definitions`` and ``db``, never ``run``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qarion_etl.tasks.base import BaseTask

#: Each type's class as ``module:Class`` of this package, imported when a task of the type
#: first runs (a flow of transformations never loads the ingestion machinery).
TASK_TYPES: dict[str, str] = {
    "ingestion": "ingestion:IngestionTask",
    "transformation": "transformation:TransformationTask",
}


def get_task_class(type_name: str) -> type[BaseTask]:
    """The class implementing task type ``type_name``."""
    module, _, name = TASK_TYPES[type_name].partition(":")
    cls: type[BaseTask] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return cls
