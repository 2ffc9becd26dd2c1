"""The engine qarion-etl does not list: the base's defaults under the engine's own name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from qarion_etl.db.engines.base import Dialect


class Generic(Dialect):
    """An engine qarion-etl does not list, reached through its SQLAlchemy dialect.

    Args:
        name: the SQLAlchemy dialect's name.
        paramstyle: the driver's placeholder style.
        quote_identifier: the SQLAlchemy dialect's own identifier quoting, if known.
    """

    def __init__(
        self,
        name: str,
        *,
        paramstyle: Literal["qmark", "format"] = "qmark",
        quote_identifier: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(name)
        self.paramstyle = paramstyle
        self._quote_identifier = quote_identifier

    def quote(self, name: str) -> str:
        # Its own SQLAlchemy dialect knows its quoting better than ANSI does.
        if self._quote_identifier is not None:
            return self._quote_identifier(name)
        return super().quote(name)
