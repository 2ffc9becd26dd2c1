"""Secrets and their masks: ``Secret`` strings, ``mask()``, ``mask_url()`` and ``secrets_in()``.

Values that come from the environment or from ``[credentials]`` are ``Secret`` strings:
they work as ordinary strings but their ``repr`` is masked, and ``mask()`` turns any
structure holding them into a printable one. ``secrets_in()`` lists them so the CLI can
scrub them from every message; ``mask_url()`` hides the password of a database URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


class Secret(str):
    """A string whose ``repr`` never shows the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    return _PASSWORD_IN_URL.sub(r"\1***\3", str(url))


def mask(value: Any) -> Any:
    """A copy of ``value`` with every ``Secret`` replaced by ``***``."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    return value


def secrets_in(value: Any) -> list[str]:
    """Every secret string found in ``value`` (to scrub them from messages)."""
    found: list[str] = []
    if isinstance(value, Secret):
        if value:
            found.append(str(value))
    elif isinstance(value, Mapping):  # dicts, and the config's read-only tables
        for v in value.values():
            found.extend(secrets_in(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            found.extend(secrets_in(v))
    return found
