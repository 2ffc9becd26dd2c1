"""Text as the pictures show it: nothing hidden, nothing that reorders its neighbours.

Ids and data come from flow files, databases and input files. A bidirectional control
character (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) in one of them would make
the browser reorder the text around it (``Trojan Source``), and zero-width or control
characters would hide that two ids differ. ``visible`` writes each such character as its
code point (``‹U+202E›``), so it is seen and has no effect; the page's style isolates ids
(``unicode-bidi: isolate``) so right-to-left letters in one do not move the text beside it.
"""

from __future__ import annotations

import re

#: Characters that are shown as their code point: C0 and C1 controls (but tab, line
#: feed and carriage return), DEL, the bidirectional controls and the zero-width ones.
HIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)


def _mark(match: re.Match[str]) -> str:
    return f"‹U+{ord(match.group()):04X}›"


def visible(text: str) -> str:
    """``text`` with every hidden or reordering character written as ``‹U+XXXX›``."""
    return HIDDEN.sub(_mark, text) if HIDDEN.search(text) else text


def middle_clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters by an ellipsis in the middle (both ends stay)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head) :]}"
