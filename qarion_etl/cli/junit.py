"""``run --junit-xml F``: the run as a JUnit report (one test case per task) for CI systems.

Each data check of a task (``[[tasks.checks]]``) is a test case too, after its task's
(class name ``<flow>.<task>``, name ``check <name>``): a failed ``error`` check is a
``<failure>`` with its count and sample rows; a warned one passes, its warning in
``<system-out>`` and a ``severity``/``status`` property on every check case.

Every text and attribute goes through ``escaping.xml_text``: a control character in data
(a CSV cell quoted by a driver's error) is shown as an escape, so the file always parses.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from qarion_etl.cli.checks_view import check_line
from qarion_etl.errors import UsageError
from qarion_etl.escaping import xml_text
from qarion_etl.run.model import RunResult, TaskOutcome, TaskStatus

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


def _check_cases(suite: ET.Element, flow_id: str, task: TaskOutcome) -> None:
    """One test case per check of ``task``."""
    for check in task.checks or []:
        case = _element(
            suite, "testcase", classname=f"{flow_id}.{task.task_id}", name=f"check {check['name']}"
        )
        props = _element(case, "properties")
        for key in ("type", "column", "severity", "status", "failing"):
            if check.get(key) is not None:
                _element(props, "property", name=key, value=str(check[key]))
        if check["status"] == "pass":
            continue
        text = check_line(check)
        if check["status"] == "fail":
            rows = "\n".join(", ".join(f"{k}={v!r}" for k, v in r.items()) for r in check["sample"])
            _element(case, "failure", f"{text}\n{rows}".strip(), message=text)
        else:
            _element(case, "system-out", text)


def write_junit(result: RunResult, path: str | Path) -> None:
    """Write ``result`` to ``path`` as JUnit XML."""
    checks = [c for t in result.tasks for c in t.checks or []]
    failures = sum(t.status in (FAILED, INTERRUPTED) for t in result.tasks)
    failures += sum(c["status"] == "fail" for c in checks)
    skipped = sum(t.status in (SKIPPED, NOT_RUN) for t in result.tasks)
    suite = _element(
        None,
        "testsuite",
        name=result.flow_id,
        tests=str(len(result.tasks) + len(checks)),
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
        _check_cases(suite, result.flow_id, task)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"--junit-xml {path}: cannot write the file: {reason}") from None
