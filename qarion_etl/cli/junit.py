"""``run --junit-xml F``: the run as a JUnit report (one test case per task) for CI systems."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from qarion_etl.run.model import RunResult, TaskStatus

FAILED, INTERRUPTED = TaskStatus.FAILED, TaskStatus.INTERRUPTED
SKIPPED, NOT_RUN = TaskStatus.SKIPPED, TaskStatus.NOT_RUN


def write_junit(result: RunResult, path: str | Path) -> None:
    """Write ``result`` to ``path`` as JUnit XML."""
    failures = sum(t.status in (FAILED, INTERRUPTED) for t in result.tasks)
    skipped = sum(t.status in (SKIPPED, NOT_RUN) for t in result.tasks)
    suite = ET.Element(
        "testsuite",
        {
            "name": result.flow_id,
            "tests": str(len(result.tasks)),
            "failures": str(failures),
            "skipped": str(skipped),
            "errors": "0",
            "time": f"{result.duration_seconds or 0:.3f}",
            "timestamp": result.started_at,
        },
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "dag_run_id", "value": result.dag_run_id})
    ET.SubElement(props, "property", {"name": "batch_id", "value": str(result.batch_id)})
    for task in result.tasks:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": result.flow_id,
                "name": task.task_id,
                "time": f"{task.duration_seconds or 0:.3f}",
            },
        )
        if task.sql_path or task.attempts:
            case_props = ET.SubElement(case, "properties")
            if task.sql_path:
                ET.SubElement(case_props, "property", {"name": "sql_path", "value": task.sql_path})
            ET.SubElement(case_props, "property", {"name": "tries", "value": str(task.tries)})
        if task.status in (FAILED, INTERRUPTED):
            node = ET.SubElement(
                case, "failure", {"message": (task.error or task.status).splitlines()[0]}
            )
            node.text = task.error or task.status  # the whole error, the SQL file named
            if task.sql_path:
                ET.SubElement(case, "system-out").text = f"SQL that ran: {task.sql_path}"
        elif task.status in (SKIPPED, NOT_RUN):
            ET.SubElement(case, "skipped", {"message": task.error or task.status})
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
