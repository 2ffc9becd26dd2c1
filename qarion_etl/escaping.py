"""Text made safe for each output that is not HTML: terminals, JSON lines, XML, Markdown, workflow commands.

Data reaches every output of a run: a driver's message quotes a CSV cell, an error names a
value. Each sink escapes it for its own format, so data is always shown as text and never
read as markup or as a control:

- ``visible``: a terminal or a log. Control characters (an ESC that would start an escape
  sequence, a carriage return that would overwrite the line, C1 controls) and the
  bidirectional-text controls are shown as ``\\x1b`` or ``\\u202e``; newlines and tabs stay.
- ``json_visible``: a JSON document already serialised; the same characters become
  ``\\u`` escapes, so the document still parses to the same value.
- ``xml_text``: XML 1.0 (JUnit); the characters XML forbids become visible escapes, so
  the file always parses.
- ``md_code``, ``md_fence``: Markdown (GitHub's step summary); data goes into code spans
  and fenced blocks it cannot close, so it cannot add a heading, a link or HTML.
- ``workflow_data``, ``workflow_property``: GitHub Actions workflow commands.

Nothing of the project is imported here.
"""

from __future__ import annotations

import re

__all__ = [
    "json_visible",
    "md_code",
    "md_fence",
    "visible",
    "workflow_data",
    "workflow_property",
    "xml_text",
]

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional-text controls
# (marks, embeddings, overrides, isolates) that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What XML 1.0 does not allow in a document (besides the controls above): lone
# surrogates and the two non-characters U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
# A line whose first non-blank characters are "::" is a workflow command to the runner.
_COMMAND_LINE = re.compile(r"^(\s*):", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")


def _escaped(m: re.Match[str]) -> str:
    code = ord(m[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, workflow_commands: bool = False) -> str:
    """``text`` for a terminal: every control character shown as an escape, never sent.

    Args:
        text: any text, from data or not.
        workflow_commands: also keep a line of data from reading as a GitHub Actions
            workflow command (the ``:`` of a line that starts with ``::`` is shown as
            ``\\x3a``); for output that a runner reads.

    Example:
        >>> visible("a\\x1b]0;title\\x07b")
        'a\\\\x1b]0;title\\\\x07b'
    """
    if _CONTROL.search(text) is not None:
        text = _CONTROL.sub(_escaped, text)
    if workflow_commands and "::" in text:
        text = _COMMAND_LINE.sub(
            lambda m: m[0] if not m.string.startswith(":", m.end()) else m[1] + "\\x3a", text
        )
    return text


def json_visible(document: str) -> str:
    """A serialised JSON ``document`` with the controls ``json.dumps`` leaves raw escaped.

    ``json.dumps(..., ensure_ascii=False)`` escapes C0 controls but writes DEL, the C1
    controls and the bidirectional controls as they are; a terminal would act on them.
    They only occur inside strings, where a ``\\uXXXX`` escape means the same character.
    """
    if _CONTROL.search(document) is None:
        return document
    return _CONTROL.sub(lambda m: f"\\u{ord(m[0]):04x}", document)


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids (and every control) shown as an escape."""
    text = visible(text)
    if _NOT_XML.search(text) is not None:
        text = _NOT_XML.sub(_escaped, text)
    return text


def md_code(text: str, *, in_table: bool = False) -> str:
    """``text`` as a Markdown code span that nothing in it can close.

    The fence is one backtick longer than the longest run of backticks in ``text``; a
    space pads a text that starts or ends with a backtick; line breaks become spaces. In
    a table cell ``|`` is escaped too (GFM splits cells before it reads code spans).
    """
    text = " ".join(visible(text).splitlines())
    if not text:
        return ""
    fence = "`" * (max((len(r) for r in _BACKTICKS.findall(text)), default=0) + 1)
    if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")):
        text = f" {text} "
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def md_fence(text: str, info: str = "text") -> str:
    """``text`` as a fenced Markdown code block that no line of it can close."""
    longest = max((len(r) for r in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{visible(text)}\n{fence}"


def workflow_data(text: str) -> str:
    """The message of a workflow command (``::error …::MESSAGE``): ``%``, CR and LF escaped.

    Other control characters are shown as escapes (``visible``), as on a terminal.
    """
    return visible(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def workflow_property(text: str) -> str:
    """A property of a workflow command (``file=…``): as data, and ``:`` and ``,`` escaped."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")
