"""Who drives a run: alone, as one of several flows sharing task slots, or one task at a time
inside an orchestrator. A ``RunRequest`` says what to run; a ``Driver`` says how.

=================  =========================================================================
``Standalone``     this process owns the run (recorded as its owner, so a killed run reads
                   ``abandoned``), retries failed tasks itself and finishes the run
``SharedSlots``    as standalone, but its tasks take slots shared with other flows' runs
                   (``run FLOW FLOW …``, ``run --all``), and a stop from outside ends it
``Orchestrated``   one task of a run whose other tasks run in other processes (Airflow): the
                   orchestrator counts and retries the tries, no process owns the run, each
                   write is fenced against a newer try, and the run's status and results
                   file are settled from every task's record
=================  =========================================================================
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Driver:
    """How a run is driven. ``Standalone()`` is the default.

    (Plain classes, not dataclasses: they are made once per run, and a run's start-up pays
    for every class a dataclass decorator builds.)
    """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def owns_run(self) -> bool:
        """Whether this process is recorded as the run's owner."""
        return True

    def retries_tasks(self) -> bool:
        """Whether this process tries a failed task again (by its ``retries``)."""
        return True

    def try_number(self) -> int:
        """The number of this execution's first try, counted by an orchestrator (else 1)."""
        return 1

    def settles_run(self) -> bool:
        """Whether the run is settled from its tasks' records (their processes are many)."""
        return False

    @property
    def stop(self) -> threading.Event | None:
        """An event set from outside to stop the run (``None``: only Ctrl-C stops it)."""
        return None

    @contextmanager
    def task_slot(self, cancelled: threading.Event) -> Iterator[bool]:
        """Hold a slot while a task runs; yields ``False`` when the run stopped first."""
        yield True


class Standalone(Driver):
    """This process runs the whole run."""


class SharedSlots(Driver):
    """One of several flows run at once: tasks take slots of ``slots``; ``stop`` ends them all."""

    def __init__(self, slots: threading.Semaphore, stopping: threading.Event) -> None:
        self.slots = slots
        self.stopping = stopping

    @property
    def stop(self) -> threading.Event | None:
        return self.stopping

    @contextmanager
    def task_slot(self, cancelled: threading.Event) -> Iterator[bool]:
        while not self.slots.acquire(timeout=0.1):
            if cancelled.is_set():
                yield False  # never started: not run
                return
        try:
            yield True
        finally:
            self.slots.release()


class Orchestrated(Driver):
    """One task of a run, as an orchestrator's worker runs it (its try ``number``)."""

    def __init__(self, number: int = 1) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"Orchestrated({self.number})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Orchestrated) and other.number == self.number

    def __hash__(self) -> int:
        return hash(("Orchestrated", self.number))

    def owns_run(self) -> bool:
        return False

    def retries_tasks(self) -> bool:
        return False

    def try_number(self) -> int:
        return self.number

    def settles_run(self) -> bool:
        return True
