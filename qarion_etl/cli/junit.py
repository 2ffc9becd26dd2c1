"""``run --junit-xml F``: the run as a JUnit report (one test case per task) for CI systems.

Every text and attribute goes through ``escaping.xml_text``: a control character in data
(a CSV cell quoted by a driver's error) is shown as an escape, so the file always parses.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from qarion_etl.errors import UsageError
from qarion_etl.escaping import xml_text
from qarion_etl.run.model import RunResult, TaskStatus

FAILED, INTERRUPTED = TaskStatus.FAILED, TaskStatus.INTERRUPTED
SKIPPED, NOT_RUN = TaskStatus.SKIPPED, TaskStatus.NOT_RUN


def _element(
    parent: ET.Element | None, tag: str, text: str | None = None, **attrs: str
) -> ET.Element:
    """An element with its attributes and text made valid XML."""
    clean = {k: xml_text(v) for k, v in attrs.items()}
    node = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
    if text is not None:
        node.text = xml_text(text)
    return node


def write_junit(result: RunResult, path: str | Path) -> None:
    """Write ``result`` to ``path`` as JUnit XML."""
    failures = sum(t.status in (FAILED, INTERRUPTED) for t in result.tasks)
    skipped = sum(t.status in (SKIPPED, NOT_RUN) for t in result.tasks)
    suite = _element(
        None,
        "testsuite",
        name=result.flow_id,
        tests=str(len(result.tasks)),
        failures=str(failures),
        skipped=str(skipped),
        errors="0",
        time=f"{result.duration_seconds or 0:.3f}",
        timestamp=result.started_at,
    )
    props = _element(suite, "properties")
    _element(props, "property", name="dag_run_id", value=result.dag_run_id)
    _element(props, "property", name="batch_id", value=str(result.batch_id))
    for task in result.tasks:
        case = _element(
            suite,
            "testcase",
            classname=result.flow_id,
            name=task.task_id,
            time=f"{task.duration_seconds or 0:.3f}",
        )
        if task.sql_path or task.attempts:
            case_props = _element(case, "properties")
            if task.sql_path:
                _element(case_props, "property", name="sql_path", value=task.sql_path)
            _element(case_props, "property", name="tries", value=str(task.tries))
        if task.status in (FAILED, INTERRUPTED):
            error = task.error or task.status
            # The whole error as the text, the SQL file named; its first line as the message.
            _element(case, "failure", error, message=(error.splitlines() or [""])[0])
            if task.sql_path:
                _element(case, "system-out", f"SQL that ran: {task.sql_path}")
        elif task.status in (SKIPPED, NOT_RUN):
            _element(case, "skipped", message=task.error or task.status)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"--junit-xml {path}: cannot write the file: {reason}") from None
