"""The flow files the pages may draw: only those of the project's ``flows_dir``.

A page names a flow by its id (or its file's stem); ``project_flows`` maps those names to
files of ``flows_dir`` and nothing else, so a name that is a path, or a file that is not
a flow, is never opened. Flow ids and validated flows are kept by file version (path,
mtime, size): the pages of one flow come often, and a changed file is read again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qarion_etl.errors import QarionError, clip

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.project import Project

#: Validated flows by file and version (path, mtime, size): pages of one flow come often.
_FLOWS: dict[tuple[str, int, int], tuple[Flow, TaskGraph]] = {}
#: The flow id of each flow file, by file and version.
_IDS: dict[tuple[str, int, int], str] = {}


def _version(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_mtime_ns, stat.st_size)


def project_flows(project: Project) -> dict[str, Path]:
    """The flow files of the project's ``flows_dir``, by flow id and by file stem.

    The pages draw only these: a name that is not one of them (a path, a file that is not
    a flow) is not looked up anywhere else.
    """
    out: dict[str, Path] = {}
    for path in project.flow_paths():
        flow_id = _flow_id(project, path)
        if flow_id is not None:
            out.setdefault(flow_id, path)
        out.setdefault(path.stem, path)
    return out


def flow_ids(project: Project) -> list[str]:
    """The ids of the flows in ``flows_dir`` (a file that does not load: its stem), sorted."""
    return sorted({_flow_id(project, p) or p.stem for p in project.flow_paths()})


def _flow_id(project: Project, path: Path) -> str | None:
    try:
        key = _version(path)
        if key not in _IDS:
            if len(_IDS) > 1024:
                _IDS.clear()
            _IDS[key] = project.load_flow(path).id
        return _IDS[key]
    except (QarionError, OSError):
        return None


def flow_of(project: Project, flow_id: str) -> tuple[Flow | None, TaskGraph | None, str | None]:
    """The flow ``flow_id`` of ``flows_dir`` as its file says today, validated."""
    path = project_flows(project).get(flow_id)
    if path is None:
        return None, None, f"the project has no flow file of '{clip(flow_id)}' now"
    try:
        key = _version(path)
        if key not in _FLOWS:
            if len(_FLOWS) > 64:
                _FLOWS.clear()
            _FLOWS[key] = project.validate(path)
        spec, graph = _FLOWS[key]
    except (QarionError, OSError) as exc:
        return None, None, f"the flow file does not load now: {str(exc).splitlines()[0]}"
    return spec, graph, None
