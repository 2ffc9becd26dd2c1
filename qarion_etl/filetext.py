"""Reading a whole input file with a size limit: flow and config files, ``--vars-file``.

A file read whole is held in memory whole: ``--vars-file /dev/zero`` must fail at once,
not after filling the memory. ``read_limited`` reads at most ``limit`` bytes and says
when the file holds more.
"""

from __future__ import annotations

from pathlib import Path

#: The largest file read whole (flows, the configuration, variables): 16 MB.
MAX_INPUT_BYTES = 16 * 1024 * 1024


class FileTooLarge(ValueError):
    """The file is larger than the limit for a file read whole."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than {limit // (1024 * 1024)} MB")
        self.limit = limit


def read_limited(path: str | Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Raises:
        FileTooLarge: the file holds more than ``limit`` bytes (or never ends).
        OSError: the file cannot be read.
    """
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data
