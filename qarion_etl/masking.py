"""Secrets and their masks: ``Secret`` strings, ``mask()``, ``mask_url()`` and ``secrets_in()``.

Values that come from the environment or from ``[credentials]`` are ``Secret`` strings:
they work as ordinary strings but their ``repr`` is masked, and ``mask()`` turns any
structure holding them into a printable one. ``secrets_in()`` lists them, with every
password written in a URL of the configuration (``url_passwords()``), so the CLI can
scrub them from every message; ``mask_url()`` hides the credentials of every URL in a
text.

A URL credential is the password of its user information (``scheme://user:PASSWORD@host``,
up to the last ``@`` before the host, so an unencoded ``@`` in a password is masked too)
and the value of a query parameter whose name says it is a secret (``?password=…``,
``&sslpassword=…``, ``?token=…``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

MASK = "***"

#: A key or parameter name that holds a secret.
SENSITIVE_NAME = re.compile(
    r"secret|password|passwd|pwd|token|access_key|private_key|api_key|credential", re.I
)

# ``scheme://user:`` then the password, greedy up to the last ``@`` that a host follows (a
# host ends at ``/``, ``?``, ``#``, a blank, a quote or the end). The scheme and user are
# bounded so a long word without ``://`` costs a bounded scan at each position.
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s:/?#@'\"<>]{0,256}:)"
    r"(?P<password>[^\s'\"<>]+)"
    r"(?=@[^\s@/?#'\"<>]*(?:[/?#\s'\"<>]|$))"
)
_QUERY_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.-]{1,64})=)(?P<value>[^&#\s'\"<>]+)")


class Secret(str):
    """A string whose ``repr`` never shows the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"


def mask_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``.

    Example:
        >>> mask_url("postgresql://me:p@ss@db:5432/x?sslpassword=k&sslmode=require")
        'postgresql://me:***@db:5432/x?sslpassword=***&sslmode=require'
    """
    text = str(text)
    if "://" in text:
        text = _USERINFO.sub(lambda m: m["head"] + MASK, text)
    if "=" in text:
        text = _QUERY_PARAM.sub(_masked_param, text)
    return text


def _masked_param(m: re.Match[str]) -> str:
    return m["head"] + MASK if SENSITIVE_NAME.search(m["name"]) else m[0]


def url_passwords(text: str) -> list[str]:
    """The URL credentials written in ``text``, as written and percent-decoded.

    A password with an unencoded ``@`` also gives each of its ``@``-separated parts: a
    driver that reads the URL its own way names them (as a host, a user) in its errors.
    """
    found: list[str] = []
    if "://" in text:
        for m in _USERINFO.finditer(text):
            password = m["password"]
            found += [password, *password.split("@")]
    if "=" in text:
        found += [
            m["value"] for m in _QUERY_PARAM.finditer(text) if SENSITIVE_NAME.search(m["name"])
        ]
    decoded = [unquote(p) for p in found]
    return list(dict.fromkeys(p for p in found + decoded if p))


def mask(value: Any) -> Any:
    """A copy of ``value`` with every ``Secret`` replaced by ``***`` and URL credentials masked."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, Mapping):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    return value


#: Keys of a credentials table whose value is no secret: messages may name them.
PUBLIC_KEYS = frozenset({"region_name"})


def secrets_in(value: Any) -> list[str]:
    """Every secret string found in ``value`` (to scrub them from messages).

    ``Secret`` strings whole (but the values of ``PUBLIC_KEYS``: an AWS region), and the
    credentials of every URL written in any string.
    """
    found: list[str] = []
    if isinstance(value, str):
        if isinstance(value, Secret) and value:
            found.append(str(value))
        found.extend(url_passwords(value))
    elif isinstance(value, Mapping):  # dicts, and the config's read-only tables
        for k, v in value.items():
            if k not in PUBLIC_KEYS:
                found.extend(secrets_in(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            found.extend(secrets_in(v))
    return found
