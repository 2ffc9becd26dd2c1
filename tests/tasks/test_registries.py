"""The lists that must agree across stages: task types, input formats, template filters."""

from __future__ import annotations

from qarion_etl.db.dialects import dialect_named
from qarion_etl.definitions import task_types, templates
from qarion_etl.run.rendering import _quoting_filters
from qarion_etl.tasks import TASK_TYPES, get_task_class
from qarion_etl.tasks.base import BaseTask
from qarion_etl.tasks.formats import FORMATS


def test_every_declared_task_type_has_an_implementation() -> None:
    assert set(TASK_TYPES) == set(task_types.TASK_TYPES)
    for name in TASK_TYPES:
        assert issubclass(get_task_class(name), BaseTask)
        assert task_types.task_type(name) is task_types.TASK_TYPES[name]
    assert task_types.task_type("nope") is None


def test_every_declared_format_can_be_read() -> None:
    assert set(FORMATS) == set(task_types.FORMATS)
    assert all(f.name == name for name, f in FORMATS.items())


def test_rendering_supplies_every_filter_validation_knows() -> None:
    assert set(_quoting_filters(dialect_named("duckdb"))) == set(templates.FILTER_NAMES)
