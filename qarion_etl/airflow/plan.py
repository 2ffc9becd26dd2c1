"""What the DAG builders need of a project, read without connecting to anything, and cached.

Airflow parses DAG files again and again (every 30 s by default, and once more in every
task's own process), and a slow parse is the first complaint about tools that render
projects as DAGs. ``plan_project`` reads the configuration (leaving ``${airflow_conn:…}``
unresolved: parsing asks Airflow for no connection) and validates every flow once per
content. Two caches keep the work (``QARION_ETL_AIRFLOW_CACHE``, else a folder in the
system's temporary directory):

- the whole project's plan, keyed by the configuration file's bytes and checked against
  the bytes of every flow file: while nothing changed, a parse reads one JSON document and
  imports nothing of the planner (no TOML parser, no flow models, no templates);
- each flow's plan (or its problems), keyed by its file's and the configuration's bytes,
  so a change to one flow validates that flow alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl import __version__

if TYPE_CHECKING:
    from qarion_etl.definitions.config import ProjectConfig
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.project import Project

CACHE_ENV = "QARION_ETL_AIRFLOW_CACHE"
#: The configuration file's name (``definitions.config.CONFIG_FILE``, which a test keeps
#: equal: this module reads a cached plan without importing the configuration reader).
CONFIG_FILE = "qarion-etl.toml"


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
    #: Airflow assets (``asset_of``) of the datasets of other flows it reads through ``ref()``.
    inlets: tuple[tuple[str, str], ...] = ()
    #: Airflow assets of the datasets it writes that other flows read.
    outlets: tuple[tuple[str, str], ...] = ()


def asset_of(flow_id: str, namespace: str, dataset: str) -> tuple[str, str]:
    """The Airflow asset of a dataset, as ``(name, uri)``: ``shop.orders``,
    ``qarion-etl://shop_ns/orders``."""
    return f"{flow_id}.{dataset}", f"qarion-etl://{namespace}/{dataset}"


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
        tasks = tuple(
            TaskPlan(
                **{
                    **t,
                    "upstream": tuple(t["upstream"]),
                    "inlets": tuple(tuple(a) for a in t.get("inlets", ())),
                    "outlets": tuple(tuple(a) for a in t.get("outlets", ())),
                }
            )
            for t in doc.pop("tasks")
        )
        return cls(**doc, tasks=tasks)

    @property
    def inlets(self) -> list[tuple[str, str]]:
        """Every asset of another flow that a task of this one reads, once."""
        return list(dict.fromkeys(a for t in self.tasks for a in t.inlets))


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

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "config_path": str(self.config_path),
            "flows": [asdict(f) for f in self.flows],
            "problems": list(self.problems),
            "pool": None if self.pool is None else asdict(self.pool),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ProjectPlan:
        pool = doc.get("pool")
        return cls(
            Path(doc["root"]),
            Path(doc["config_path"]),
            [FlowPlan.from_json(dict(f)) for f in doc["flows"]],
            list(doc["problems"]),
            Pool(**pool) if pool else None,
        )


def _unresolved(conn_id: str, as_credentials: bool) -> Any:
    """Parsing resolves no Airflow connection: the reference stays as written."""
    return {} if as_credentials else f"${{airflow_conn:{conn_id}}}"


def config_path_of(project_dir: str | Path) -> Path:
    path = Path(project_dir).expanduser().resolve()
    return path / CONFIG_FILE if path.is_dir() else path


def warehouse_pool(config: ProjectConfig) -> Pool | None:
    """The pool of a SQLite or DuckDB warehouse file, which takes one writer process at a time."""
    from qarion_etl.db.urls import database_file, resolve_url

    url = str(config.engine.url)
    if "${airflow_conn:" in url:
        return None  # known only when the task runs: treated as a server
    file = database_file(resolve_url(url, config.root, make_folder=False))
    if file is None:
        return None  # a server takes many writers
    path = Path(file)
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path.name).strip("_")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return Pool(f"qarion_{slug}_{digest}", 1, f"qarion-etl: one writer at a time of {path}")


def project_pools(project_dir: str | Path) -> list[Pool]:
    """The Airflow pools the project's DAGs use (create them once: ``Pool.command()``)."""
    from qarion_etl.definitions.config import load_config

    config = load_config(config_path_of(project_dir), connections=_unresolved)
    pool = warehouse_pool(config)
    return [pool] if pool is not None else []


def plan_project(project_dir: str | Path) -> ProjectPlan:
    """Read and validate a project for the DAG builders, connecting to nothing.

    Raises:
        QarionError: the configuration itself cannot be read (no flow can be planned).
    """
    cfg_path = config_path_of(project_dir)
    config_bytes = cfg_path.read_bytes() if cfg_path.is_file() else b""
    cache = _Cache()
    project_key = "project-" + _digest(__version__, str(cfg_path), config_bytes)
    cached = _cached_plan(cache.get(project_key))
    if cached is not None:
        return cached
    from qarion_etl.definitions.config import load_config  # the planner: only on a miss
    from qarion_etl.project import Project

    config = load_config(cfg_path, connections=_unresolved)
    project = Project(config)
    plan = ProjectPlan(config.root, cfg_path, pool=warehouse_pool(config))
    files = {
        path.relative_to(config.root).as_posix(): _digest(
            path.relative_to(config.root).as_posix(), "", path.read_bytes()
        )
        for path in _project_files(config.root, config.flows_dir)
    }
    # A flow's refs and macro calls are checked against the other flows and the macros.
    config_key = _digest(__version__, json.dumps(files, sort_keys=True), config_bytes)
    seen: dict[str, str] = {}
    for path in project.flow_paths():
        rel = path.relative_to(config.root).as_posix()
        content = path.read_bytes()
        key = _digest(config_key, rel, content)
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
    cache.put(
        project_key,
        {"flows_dir": str(config.flows_dir), "files": files, "plan": plan.to_json()},
    )
    return plan


def _project_files(root: Path, flows_dir: Path) -> list[Path]:
    """The flow files and the macro files (``macros/*.sql``) a plan depends on."""
    found = []
    for folder, pattern in ((flows_dir, "*.toml"), (root / "macros", "*.sql")):
        found += sorted(folder.glob(pattern)) if folder.is_dir() else []
    return found


def _digest(first: str, second: str, content: bytes) -> str:
    return hashlib.sha256(f"{first}\0{second}\0".encode() + content).hexdigest()


def _cached_plan(doc: dict[str, Any] | None) -> ProjectPlan | None:
    """The cached plan of the whole project, if no flow file was added, removed or changed."""
    if doc is None:
        return None
    try:
        root = Path(doc["plan"]["root"])
        paths = _project_files(root, Path(doc["flows_dir"]))
        files = {p.relative_to(root).as_posix(): p for p in paths}
        if set(files) != set(doc["files"]):
            return None
        for rel, path in files.items():
            if _digest(rel, "", path.read_bytes()) != doc["files"][rel]:
                return None
        return ProjectPlan.from_json(doc["plan"])
    except (OSError, KeyError, TypeError, ValueError):
        return None  # any doubt: plan again


def _plan_flow(project: Project, path: Path, rel: str) -> dict[str, Any]:
    from qarion_etl.definitions.dag import topological_order
    from qarion_etl.errors import FlowValidationError, QarionError

    try:
        flow, graph = project.validate(path)
    except FlowValidationError as exc:
        where = str(exc.path) if str(exc.path).endswith(".sql") else rel  # a macro file
        return {"problems": "\n".join(p.format(where) for p in exc.problems)}
    except QarionError as exc:
        return {"problems": f"{rel}: {exc}"}
    tasks = []
    inlets, outlets = _assets(project, flow)
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
                inlets=tuple(inlets.get(tid, ())),
                outlets=tuple(outlets.get(tid, ())),
            )
        )
    plan = FlowPlan(flow.id, flow.name, flow.description, flow.namespace, rel, tuple(tasks))
    return asdict(plan)


def _assets(
    project: Project, flow: Flow
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]]]:
    """Per task, the assets it reads from other flows and those it writes for other flows.

    An ephemeral task of another flow is no table: it makes no asset.
    """
    index = project.models()
    read_elsewhere = {
        dataset
        for (up, down), datasets in index.flow_edges().items()
        if up == flow.id and down != flow.id
        for dataset in datasets
    }
    inlets: dict[str, list[tuple[str, str]]] = {}
    outlets: dict[str, list[tuple[str, str]]] = {}
    for task in flow.tasks:
        for found in index.reads(flow, task):
            if found.flow.id != flow.id and not found.ephemeral:
                asset = asset_of(found.flow.id, found.flow.namespace, found.dataset)
                inlets.setdefault(task.id, []).append(asset)
        target = task.target_dataset_id
        if target in read_elsewhere and task.materialized != "ephemeral":
            outlets[task.id] = [asset_of(flow.id, flow.namespace, target)]
    return inlets, outlets


class _Cache:
    """JSON documents by key in a folder; any failure to read or write is a miss."""

    def __init__(self) -> None:
        base = os.environ.get(CACHE_ENV)
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        self.folder = (
            Path(base) if base else Path(tempfile.gettempdir()) / f"qarion-etl-airflow-{uid}"
        )

    def _ours(self) -> bool:
        """Whether the folder is this user's and no one else may write in it.

        The default folder is in the shared temporary directory: a folder another user made
        there first (or opened to others) could hand this process plans it did not write.
        """
        try:
            info = self.folder.stat()
        except OSError:
            return False
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return False
        return not info.st_mode & 0o022

    def get(self, key: str) -> dict[str, Any] | None:
        if not self._ours():
            return None
        try:
            doc = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def put(self, key: str, doc: dict[str, Any]) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._ours():
                return
            tmp = self.folder / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(doc), encoding="utf-8")
            os.replace(tmp, self.folder / f"{key}.json")
        except OSError:
            pass
