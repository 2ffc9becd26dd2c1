"""Reading command-line values: ``--var``, ``--vars-file``, ``render --xcom`` and ``--older-than``.

Each parser raises ``UsageError`` naming the option, so a typo on the command line is one
clear line and exit code 2.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qarion_etl.errors import UsageError
from qarion_etl.filetext import FileTooLarge, read_limited
from qarion_etl.jsontext import TooDeep, loads

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_value(text: str) -> Any:
    """A ``--var``/``--xcom`` value: JSON when it parses as JSON, else the string itself."""
    try:
        return loads(text)
    except TooDeep as exc:
        raise UsageError(f"{text[:20]}…: {exc}") from None
    except ValueError:
        return text


def parse_pairs(pairs: Iterable[str], option: str) -> dict[str, Any]:
    """``name=value`` pairs into a dict (values parsed with ``parse_value``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option} {pair!r}: expected NAME=VALUE")
        out[name.strip()] = parse_value(value)
    return out


def load_vars_file(path: str | Path) -> dict[str, Any]:
    """Variables from a JSON or TOML file (a table of name = value)."""
    p = Path(path)
    kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
    try:
        text = read_limited(p).decode("utf-8")
    except OSError as exc:
        raise UsageError(f"--vars-file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--vars-file {path}: not {kind} text (not UTF-8 at byte {exc.start})"
        ) from None
    except FileTooLarge as exc:
        raise UsageError(f"--vars-file {path}: {exc}") from None
    try:
        if kind == "TOML":
            import tomli  # not needed by --help

            data: Any = tomli.loads(text)
        else:
            data = loads(text)
    except RecursionError:
        raise UsageError(f"--vars-file {path}: not valid {kind}: nested too deeply") from None
    except ValueError as exc:
        raise UsageError(f"--vars-file {path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--vars-file {path}: expected a table of name = value")
    return data


def parse_xcom_values(pairs: Iterable[str]) -> dict[tuple[str, str], Any]:
    """``render --xcom task.key=value`` (``task=value`` means key ``return_value``)."""
    out: dict[tuple[str, str], Any] = {}
    for name, value in parse_pairs(pairs, "--xcom").items():
        task, _, key = name.partition(".")
        out[(task, key or "return_value")] = value
    return out


def parse_age(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``15m``, ``45s`` or ``2w`` as a ``timedelta``.

    Raises:
        UsageError: the text is not one of those forms.
    """
    match = _AGE.match(text or "")
    if not match:
        raise UsageError(f"--older-than must look like 30d, 12h, 15m, 45s or 2w, not {text!r}")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
