"""What the DAG builders need of a project, read without connecting to anything, and cached.

Airflow parses DAG files again and again (every 30 s by default), and a slow parse is the
first complaint about tools that render projects as DAGs. ``plan_project`` reads the
configuration (leaving ``${airflow_conn:…}`` unresolved: parsing asks Airflow for no
connection) and validates every flow once per content: the plan of each flow file, or its
problems, is kept in a cache keyed by the file's and the configuration's bytes
(``QARION_ETL_AIRFLOW_CACHE``, else a folder in the system's temporary directory), so a
later parse reads small JSON documents instead of validating templates again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qarion_etl import __version__
from qarion_etl.db.urls import native_target, resolve_url
from qarion_etl.definitions.config import CONFIG_FILE, ProjectConfig, load_config
from qarion_etl.definitions.dag import topological_order
from qarion_etl.errors import FlowValidationError, QarionError
from qarion_etl.project import Project

CACHE_ENV = "QARION_ETL_AIRFLOW_CACHE"


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """One task as an Airflow task: its id, its upstream tasks and its Airflow settings."""

    id: str
    type: str
    name: str | None
    description: str | None
    reads: str | None
    writes: str | None
    upstream: tuple[str, ...]
    retries: int
    retry_delay_seconds: float
    retry_exponential_backoff: bool
    timeout_seconds: float | None


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """One flow as an Airflow DAG; ``path`` is relative to the project root."""

    flow_id: str
    name: str | None
    description: str | None
    namespace: str
    path: str
    tasks: tuple[TaskPlan, ...]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FlowPlan:
        tasks = tuple(TaskPlan(**{**t, "upstream": tuple(t["upstream"])}) for t in doc.pop("tasks"))
        return cls(**doc, tasks=tasks)


@dataclass(frozen=True, slots=True)
class Pool:
    """An Airflow pool the project's tasks share: one slot per embedded database file."""

    name: str
    slots: int
    description: str

    def command(self) -> str:
        """The Airflow command that creates the pool."""
        return f'airflow pools set {self.name} {self.slots} "{self.description}"'


@dataclass
class ProjectPlan:
    """Every flow of a project that validates, and the problems of those that do not."""

    root: Path
    config_path: Path
    flows: list[FlowPlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pool: Pool | None = None


def _unresolved(conn_id: str, as_credentials: bool) -> Any:
    """Parsing resolves no Airflow connection: the reference stays as written."""
    return {} if as_credentials else f"${{airflow_conn:{conn_id}}}"


def config_path_of(project_dir: str | Path) -> Path:
    path = Path(project_dir).expanduser().resolve()
    return path / CONFIG_FILE if path.is_dir() else path


def warehouse_pool(config: ProjectConfig) -> Pool | None:
    """The pool of a SQLite or DuckDB warehouse file, which takes one writer process at a time."""
    url = str(config.engine.url)
    if "${airflow_conn:" in url:
        return None  # known only when the task runs: treated as a server
    target = native_target(resolve_url(url, config.root, make_folder=False))
    if target is None:
        return None
    path = Path(target[1])
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path.name).strip("_")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return Pool(f"qarion_{slug}_{digest}", 1, f"qarion-etl: one writer at a time of {path}")


def project_pools(project_dir: str | Path) -> list[Pool]:
    """The Airflow pools the project's DAGs use (create them once: ``Pool.command()``)."""
    config = load_config(config_path_of(project_dir), connections=_unresolved)
    pool = warehouse_pool(config)
    return [pool] if pool is not None else []


def plan_project(project_dir: str | Path) -> ProjectPlan:
    """Read and validate a project for the DAG builders, connecting to nothing.

    Raises:
        QarionError: the configuration itself cannot be read (no flow can be planned).
    """
    cfg_path = config_path_of(project_dir)
    config = load_config(cfg_path, connections=_unresolved)
    project = Project(config)
    plan = ProjectPlan(config.root, cfg_path, pool=warehouse_pool(config))
    cache = _Cache()
    config_key = hashlib.sha256(
        __version__.encode() + b"\0" + (cfg_path.read_bytes() if cfg_path.is_file() else b"")
    ).hexdigest()
    seen: dict[str, str] = {}
    for path in project.flow_paths():
        rel = path.relative_to(config.root).as_posix()
        key = hashlib.sha256(f"{config_key}\0{rel}\0".encode() + path.read_bytes()).hexdigest()
        doc = cache.get(key)
        if doc is None:
            doc = _plan_flow(project, path, rel)
            cache.put(key, doc)
        if "problems" in doc:
            plan.problems.append(doc["problems"])
            continue
        flow = FlowPlan.from_json(doc)
        if flow.flow_id in seen:
            plan.problems.append(
                f"{rel}: flow id '{flow.flow_id}' is also used by {seen[flow.flow_id]}"
            )
            continue
        seen[flow.flow_id] = rel
        plan.flows.append(flow)
    return plan


def _plan_flow(project: Project, path: Path, rel: str) -> dict[str, Any]:
    try:
        flow, graph = project.validate(path)
    except FlowValidationError as exc:
        return {"problems": "\n".join(p.format(rel) for p in exc.problems)}
    except QarionError as exc:
        return {"problems": f"{rel}: {exc}"}
    tasks = []
    for tid in topological_order(graph, flow):
        t = flow.task(tid)
        tasks.append(
            TaskPlan(
                id=t.id,
                type=t.type,
                name=t.name,
                description=t.description,
                reads=t.source_dataset_id,
                writes=t.target_dataset_id,
                upstream=tuple(sorted(graph.predecessors(tid), key=flow.task_ids.index)),
                retries=t.retries,
                retry_delay_seconds=t.retry_delay_seconds,
                retry_exponential_backoff=t.retry_exponential_backoff,
                timeout_seconds=t.timeout_seconds,
            )
        )
    plan = FlowPlan(flow.id, flow.name, flow.description, flow.namespace, rel, tuple(tasks))
    return asdict(plan)


class _Cache:
    """JSON documents by key in a folder; any failure to read or write is a miss."""

    def __init__(self) -> None:
        base = os.environ.get(CACHE_ENV)
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        self.folder = (
            Path(base) if base else Path(tempfile.gettempdir()) / f"qarion-etl-airflow-{uid}"
        )

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            doc = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def put(self, key: str, doc: dict[str, Any]) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(doc), encoding="utf-8")
            os.replace(tmp, self.folder / f"{key}.json")
        except OSError:
            pass
