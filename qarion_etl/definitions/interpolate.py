"""``${env:NAME}``, ``${env:NAME:-default}`` and ``${credential:NAME}`` in configuration.

A value that came from the environment is a ``Secret`` (``qarion_etl.masking``): it works
as an ordinary string but never shows in a ``repr``, ``config show`` or an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from qarion_etl.masking import Secret

_REF = re.compile(r"\$\{(env|credential):([A-Za-z_][A-Za-z0-9_.-]*)(?::-(.*?))?\}")


class InterpolationError(Exception):
    """A referenced variable or credential does not exist."""


def interpolate(
    value: Any, env: Mapping[str, str], credentials: Mapping[str, Any], where: str = ""
) -> Any:
    """Substitute references in ``value`` (recursively through tables and arrays)."""
    if isinstance(value, str):
        return _interpolate_str(value, env, credentials, where)
    if isinstance(value, dict):
        return {
            k: interpolate(v, env, credentials, f"{where}.{k}" if where else k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, env, credentials, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _interpolate_str(
    text: str, env: Mapping[str, str], credentials: Mapping[str, Any], where: str
) -> Any:
    matches = list(_REF.finditer(text))
    if not matches:
        return text
    whole = matches[0]
    if len(matches) == 1 and whole.span() == (0, len(text)) and whole.group(1) == "credential":
        name = whole.group(2)
        if name not in credentials:
            known = ", ".join(sorted(credentials)) or "none defined"
            raise InterpolationError(
                f"{where}: unknown credential '{name}' (add a [credentials.{name}] table; known: {known})"
            )
        return credentials[name]
    secret = False

    def sub(m: re.Match[str]) -> str:
        nonlocal secret
        kind, name, default = m.group(1), m.group(2), m.group(3)
        if kind == "credential":
            raise InterpolationError(
                f"{where}: '${{credential:{name}}}' must be the whole value, not part of a string"
            )
        secret = True
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise InterpolationError(f"{where}: environment variable {name} is not set")

    result = _REF.sub(sub, text)
    return Secret(result) if secret else result
