"""Task types. ``TASK_TYPES`` maps a flow's ``type`` to its implementation, imported lazily.

``specs`` holds what validation needs to know about each type (its config keys) without
importing any engine code.
"""

from __future__ import annotations

import importlib
from typing import Any

TASK_TYPES: dict[str, str] = {
    "ingestion": "qarion_etl.tasks.ingestion:IngestionTask",
    "transformation": "qarion_etl.tasks.transformation:TransformationTask",
}


def get_task_class(type_name: str) -> Any:
    """The class implementing task type ``type_name``."""
    module, _, name = TASK_TYPES[type_name].partition(":")
    return getattr(importlib.import_module(module), name)
