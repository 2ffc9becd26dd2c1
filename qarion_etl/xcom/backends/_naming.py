"""Encoding ids into path segments that object stores and file systems accept.

One rule serves the ``s3`` key layout and the ``local_file`` folders:

- every byte outside ``A-Z a-z 0-9 - _ .`` is percent-encoded (UTF-8), so ``/``, NUL,
  ``%`` and unicode can never split or escape a path;
- a leading ``.`` is encoded too, so no segment is ``.``, ``..`` or a hidden name;
- a segment that is exactly ``_`` is written ``%5F``: a bare ``_`` means "no run" or
  "no batch" in the layout;
- an encoding longer than ``limit`` becomes ``<readable head>~<sha256 of the id>``.
  ``~`` is always encoded in ordinary segments, so a hashed segment can never equal the
  encoding of another id.

Encoding is deterministic, so a query is matched by encoding its ids and comparing
segments; decoding is only needed to show ids, and a hashed segment cannot be decoded
(``decode_segment`` returns ``None`` and the caller reads the id from the stored value).
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote

#: The segment that stands for a missing run or batch.
MISSING = "_"
#: Longest encoded segment kept readable; longer ones are hashed.
DEFAULT_SEGMENT_LIMIT = 160
_HASH_CHARS = 40
_SAFE = "-_."


def encode_segment(name: str, limit: int = DEFAULT_SEGMENT_LIMIT) -> str:
    """The path segment for ``name``: reversible when short, hashed when long.

    Args:
        name: a flow id, task id, key or run id (any string, unicode included).
        limit: longest encoded form kept readable.

    Returns:
        A non-empty string of ``A-Z a-z 0-9 - _ . % ~`` that is never ``.``, ``..``
        or ``_``, and is at most ``limit`` characters long.
    """
    encoded = quote(name.encode("utf-8", "surrogatepass"), safe=_SAFE)
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if encoded == MISSING:
        encoded = "%5F"
    if len(encoded) <= limit:
        return encoded
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    head = encoded[: max(limit - _HASH_CHARS - 1, 0)]
    cut = head.rfind("%", len(head) - 2)  # never end the head inside a %XX escape
    if cut != -1:
        head = head[:cut]
    return f"{head}~{digest}"


def decode_segment(segment: str) -> str | None:
    """The id a segment encodes, or ``None`` when the segment is a hash of a long id."""
    if "~" in segment:
        return None
    return unquote(segment, errors="surrogatepass")


def encode_optional(name: str | int | None, limit: int = DEFAULT_SEGMENT_LIMIT) -> str:
    """``_`` for a missing run or batch, else the encoded id (a batch as its digits)."""
    if name is None:
        return MISSING
    if isinstance(name, int):
        return str(name)
    return encode_segment(name, limit)


def is_hashed(segment: str) -> bool:
    """Whether ``segment`` is the hashed form of a long id."""
    return "~" in segment
