"""Each non-HTML sink's escaping: terminal, JSON lines, XML 1.0, Markdown, workflow commands."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from qarion_etl.escaping import (
    json_visible,
    md_code,
    md_fence,
    visible,
    workflow_data,
    workflow_property,
    xml_text,
)

#: Every character a sink may not pass on raw: C0 but tab and newline, DEL, C1, bidi controls.
CONTROLS = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))] + [
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
]
_RAW = re.compile("[" + "".join(re.escape(c) for c in CONTROLS) + "]")


def test_visible_shows_every_control_and_keeps_lines_and_tabs() -> None:
    text = "".join(CONTROLS) + "a\tb\nc"
    shown = visible(text)
    assert _RAW.search(shown) is None
    assert shown.endswith("a\tb\nc")
    assert visible("\x1b]0;PWNED\x07") == "\\x1b]0;PWNED\\x07"
    assert visible("x\u202ey") == "x\\u202ey"
    assert visible("plain text, ünïcode ✓") == "plain text, ünïcode ✓"


def test_visible_keeps_data_lines_from_reading_as_workflow_commands() -> None:
    text = "ok\n  ::add-mask::x\n::error::y\nnot :: at the start"
    shown = visible(text, workflow_commands=True)
    assert not any(line.lstrip().startswith("::") for line in shown.splitlines())
    assert "not :: at the start" in shown
    assert visible(text) == text


@given(st.text())
def test_json_visible_keeps_the_value_and_sends_no_control(value: str) -> None:
    document = json_visible(json.dumps({"v": value}, ensure_ascii=False))
    assert json.loads(document) == {"v": value}
    assert _RAW.search(document) is None


@given(st.text())
def test_xml_text_always_parses(value: str) -> None:
    node = ET.Element("failure", {"message": xml_text(value)})
    node.text = xml_text(value)
    parsed = ET.fromstring(ET.tostring(node, encoding="unicode"))
    assert _RAW.search(parsed.text or "") is None
    assert (parsed.text or "") == parsed.get("message")


def test_xml_text_every_code_point_below_0x110_and_the_non_characters() -> None:
    value = "".join(map(chr, range(0x110))) + "\ud800\udfff\ufffe\uffff"
    node = ET.Element("x", {"m": xml_text(value)})
    node.text = xml_text(value)
    ET.fromstring(ET.tostring(node, encoding="unicode"))  # raises when not well-formed


@given(st.text())
def test_md_code_cannot_be_closed_from_inside(value: str) -> None:
    span = md_code(value)
    if not span:
        return
    fence = re.match("`+", span)
    assert fence is not None
    inner = span[fence.end() : -fence.end()]
    assert span.endswith(fence[0])
    assert all(len(run) != len(fence[0]) for run in re.findall("`+", inner))
    assert "\n" not in span


def test_md_code_in_a_table_escapes_pipes() -> None:
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_code("``x") == "``` ``x ```"


def test_md_fence_holds_markdown_as_text() -> None:
    error = "boom\n```\n# Heading\n[link](http://example.com) <img src=x>\n````"
    block = md_fence(error)
    first, *body, last = block.splitlines()
    assert first == "`````text" and last == "`````"
    assert all(not line.startswith("`````") for line in body)


def test_workflow_command_escaping() -> None:
    assert workflow_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert workflow_property("flows/a,b.toml:3") == "flows/a%2Cb.toml%3A3"
    assert workflow_data("\x1b[31m") == "\\x1b[31m"
