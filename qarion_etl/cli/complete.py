"""Shell completion of ids: flows, tasks of the flow already typed, runs, XCom keys.

Each function is a Typer ``autocompletion`` callback: it runs only when the shell asks
for candidates (never for ``--help`` or a command), loads the project named by
``--config`` (or the nearest ``qarion-etl.toml``) and answers with nothing at all when
anything goes wrong: a completion must never print an error into the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from qarion_etl.project import Project

#: At most this many run ids are offered (the newest).
RUNS = 50


def _project(ctx: typer.Context) -> Project | None:
    from qarion_etl.project import Project

    root = ctx.find_root()
    config = root.params.get("config") if root.params else None
    try:
        return Project.load(config)
    except Exception:  # no project here, or a broken one: no candidates
        return None


def flows(ctx: typer.Context, incomplete: str) -> list[str]:
    """Flow ids, and flow files when what is typed looks like a path."""
    project = _project(ctx)
    if project is None:
        return []
    try:
        if "/" in incomplete or incomplete.endswith(".toml"):
            folder = Path(incomplete) if incomplete.endswith("/") else Path(incomplete).parent
            return sorted(str(p) for p in folder.glob("*.toml") if str(p).startswith(incomplete))
        return sorted(f for f in project.flow_ids() if f.startswith(incomplete))
    except Exception:
        return []
    finally:
        project.close()


def _typed_flow(ctx: typer.Context, project: Project) -> Any:
    flow = ctx.params.get("flow") or (ctx.params.get("flows") or [None])[0]
    if not flow:
        return None
    try:
        return project.load_flow(str(flow))
    except Exception:
        return None


def tasks(ctx: typer.Context, incomplete: str) -> list[str]:
    """Task ids of the flow given on the line (of every flow when none is given yet).

    For ``--select``, a leading ``+`` or ``@`` is kept: ``+calc`` completes to
    ``+calculate_stats``.
    """
    project = _project(ctx)
    if project is None:
        return []
    try:
        lead = incomplete[: len(incomplete) - len(incomplete.lstrip("+@"))]
        rest = incomplete[len(lead) :]
        flow = _typed_flow(ctx, project)
        if flow is not None:
            ids = list(flow.task_ids)
        else:
            ids = []
            for path in project.flow_paths():
                try:
                    ids += project.load_flow(path).task_ids
                except Exception:
                    continue
        return sorted({lead + t for t in ids if t.startswith(rest)})
    except Exception:
        return []
    finally:
        project.close()


def runs(ctx: typer.Context, incomplete: str) -> list[str]:
    """The newest run ids (of the flow given with ``--flow`` or as the argument), and ``latest``."""
    project = _project(ctx)
    if project is None:
        return []
    try:
        flow = ctx.params.get("flow")
        found = project.run_store().list_runs(str(flow) if flow else None, limit=RUNS)
        ids = ["latest", *dict.fromkeys(r.dag_run_id for r in found)]
        return [r for r in ids if r.startswith(incomplete)]
    except Exception:
        return []
    finally:
        project.close()


def keys(ctx: typer.Context, incomplete: str) -> list[str]:
    """XCom keys pushed so far (of the task and flow given on the line)."""
    project = _project(ctx)
    if project is None:
        return []
    try:
        task = ctx.params.get("task")
        flow = ctx.params.get("flow")
        service = project.xcom_service()
        try:
            entries = service.list(
                flow_id=str(flow) if flow else None,
                task_id=str(task) if task else None,
                limit=500,
            )
        finally:
            service.close()
        return sorted({e.key for e in entries if e.key.startswith(incomplete)})
    except Exception:
        return []
    finally:
        project.close()
