"""``json.loads`` that turns a value nested too deeply for Python into a clear error.

The standard decoder recurses once per nesting level and raises ``RecursionError`` near
1,000 levels; hostile input (``[[[[…]]]]`` 100,000 levels deep) must not reach the user as
an internal error. Callers map ``TooDeep`` to their own error (usage, XCom value, input).
"""

from __future__ import annotations

import json
from typing import Any


class TooDeep(ValueError):
    """The JSON text nests arrays or objects deeper than can be read."""

    def __init__(self) -> None:
        super().__init__(
            "JSON nested too deeply (arrays or objects more than about 900 levels deep)"
        )


def loads(text: str | bytes, **options: Any) -> Any:
    """Parse JSON ``text``; raises ``TooDeep`` (a ``ValueError``) instead of ``RecursionError``.

    ``options`` go to ``json.loads`` (``parse_constant``, ``parse_float``).
    """
    try:
        return json.loads(text, **options)
    except RecursionError:
        raise TooDeep() from None
