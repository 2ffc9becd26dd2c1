"""The library facade: one project (its configuration, flows and stores).

The CLI builds a ``Project`` and calls it; nothing here prints. Stores (the metadata
database, the XCom backend, the warehouse engine) are opened on first use only, so
``validate`` and ``graph`` never import SQLAlchemy or a driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.db.service import DatabaseService
from qarion_etl.definitions import connections as airflow_connections
from qarion_etl.definitions.config import ProjectConfig, load_config
from qarion_etl.errors import (
    FlowNotFound,
    FlowValidationError,
    Problem,
    QarionError,
    clip,
    did_you_mean,
)
from qarion_etl.xcom import BaseXCom, XComService
from qarion_etl.xcom.registry import create_backend

if TYPE_CHECKING:
    from collections.abc import Collection

    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.definitions.refs import ModelIndex
    from qarion_etl.run.history import RunStore


# The `xcom` commands (and `xcom get` in a CI step above all) read no flow and no run
# history: the modules for those load on first use, which keeps such a process at about
# half the start-up of `import sqlalchemy`.
def _load_flow(path: Path) -> Flow:
    from qarion_etl.definitions.flow_parser import load_flow

    return load_flow(path)


__all__ = ["Project"]


class Project:
    """A loaded project. Use as a context manager, or call ``close()``."""

    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self._metadata_db: DatabaseService | None = None
        self._engine_db: DatabaseService | None = None
        self._xcom_backend: BaseXCom | None = None
        self._secrets: list[str] | None = None
        self._models: ModelIndex | None = None
        #: Flows parsed so far, by path and the file's size and modification time: the
        #: project index, validation and a multi-flow run read each file once.
        self._parsed: dict[tuple[str, int, int], Flow] = {}

    @classmethod
    def load(cls, config_path: str | Path | None = None) -> Project:
        """The project of ``config_path`` (or the nearest ``qarion-etl.toml``).

        ``${airflow_conn:ID}`` references resolve through Airflow when it is installed.
        """
        return cls(load_config(config_path, connections=airflow_connections.resolve))

    # --- flows ---------------------------------------------------------------------
    def flow_paths(self) -> list[Path]:
        folder = self.config.flows_dir
        return sorted(folder.glob("*.toml")) if folder.is_dir() else []

    def flow_ids(self) -> list[str]:
        """The ids of the flows in ``flows_dir`` (a file that does not load: its stem)."""
        ids = []
        for path in self.flow_paths():
            try:
                ids.append(self.load_flow(path).id)
            except QarionError:
                ids.append(path.stem)
        return sorted(ids)

    def resolve_flow(self, ref: str) -> Path:
        """A flow named by path, or by id (or file stem) within ``flows_dir``."""
        if not ref or "\x00" in ref or len(ref) > 4096:
            raise FlowNotFound(ref, f"not a flow file or flow id: {clip(ref)!r}")
        try:
            return self._resolve_flow(ref)
        except OSError as exc:  # a name too long for the file system, a folder we may not read
            raise FlowNotFound(ref, f"flow {clip(ref)!r}: {exc.strerror or exc}") from None

    def _resolve_flow(self, ref: str) -> Path:
        path = Path(ref)
        if path.suffix == ".toml" or path.is_file():
            if path.is_file():
                return path
            rooted = self.config.root / ref
            if rooted.is_file():
                return rooted
            raise FlowNotFound(ref, f"flow file not found: {clip(ref)}")
        candidates = self.flow_paths()
        for candidate in candidates:
            if candidate.stem == ref:
                return candidate
        for candidate in candidates:
            try:
                if _load_flow(candidate).id == ref:
                    return candidate
            except FlowValidationError:
                continue
        names = [c.stem for c in candidates]
        raise FlowNotFound(
            ref,
            f"no flow '{clip(ref)}' in {self.config.project.flows_dir}/{did_you_mean(ref, names)}"
            + (f" (flows: {', '.join(names)})" if names else ""),
        )

    def load_flow(self, ref: str | Path) -> Flow:
        return self._flow_at(self.resolve_flow(str(ref)))

    def _flow_at(self, path: Path) -> Flow:
        """The flow file at ``path``, parsed once while it is unchanged."""
        try:
            st = path.stat()
        except OSError:
            return _load_flow(path)  # says what is wrong with the path
        key = (str(path), st.st_mtime_ns, st.st_size)
        flow = self._parsed.get(key)
        if flow is None:
            flow = self._parsed[key] = _load_flow(path)
        return flow

    def validate(
        self, ref: str | Path, *, only: Collection[str] | None = None
    ) -> tuple[Flow, TaskGraph]:
        """Load and validate one flow (the templates of the tasks ``only`` names, when
        given); raises ``FlowValidationError``."""
        models = self.models()
        if models.macros.errors:
            raise models.macros.errors[0]
        return self._validate(ref, only)

    def _validate(
        self, ref: str | Path, only: Collection[str] | None = None
    ) -> tuple[Flow, TaskGraph]:
        from qarion_etl.definitions.validation import validate_flow

        flow = self.load_flow(ref)
        return flow, validate_flow(
            flow, xcom_enabled=self.config.xcom.enabled, only=only, index=self.models()
        )

    def models(self) -> ModelIndex:
        """Every flow of ``flows_dir`` that loads, and the project's macros (read once).

        What ``ref()`` resolves against, and the project-wide graph of flows.
        """
        if self._models is None:
            from qarion_etl.definitions.macros import load_macros
            from qarion_etl.definitions.refs import ModelIndex

            flows, broken = [], set()
            for path in self.flow_paths():
                try:
                    flows.append(self._flow_at(path))
                except FlowValidationError:
                    broken.add(path.stem)  # reported when that flow itself is validated
            self._models = ModelIndex(flows, load_macros(self.config.root))
            self._models.broken = broken
        return self._models

    def validate_all(
        self,
        refs: list[str] | None = None,
        *,
        variables: dict[str, Any] | None = None,
        offline: bool = False,
    ) -> list[tuple[str, FlowValidationError | None]]:
        """Validate the named flows, or every flow in ``flows_dir``.

        With ``offline``, also what ``validation.offline_problems`` finds (missing input
        files, ``var()`` calls that ``variables`` leaves unset).
        """
        paths = [self.resolve_flow(r) for r in refs] if refs else self.flow_paths()
        if not paths:
            raise FlowNotFound("", f"no flows found in {self.config.project.flows_dir}/")
        results: list[tuple[str, FlowValidationError | None]] = [
            (str(exc.path), exc) for exc in self.models().macros.errors
        ]
        seen: dict[str, str] = {}
        for path in paths:
            try:
                flow, _ = self._validate(path)
                if offline:
                    from qarion_etl.definitions.validation import offline_problems

                    found = offline_problems(flow, self.config.root, variables)
                    if found:
                        raise FlowValidationError(flow.shown_path, found)
                if flow.id in seen:
                    raise FlowValidationError(
                        flow.shown_path,
                        [Problem(f"flow id '{flow.id}' is also used by {seen[flow.id]}")],
                    )
                seen[flow.id] = flow.shown_path
                results.append((flow.shown_path, None))
            except FlowValidationError as exc:
                results.append((exc.path or str(path), exc))
        return results

    # --- stores --------------------------------------------------------------------
    def metadata_db(self) -> DatabaseService:
        if self._metadata_db is None:
            self._metadata_db = DatabaseService(
                self.config.metadata.url, root=self.config.root, what="metadata database"
            )
        return self._metadata_db

    def engine_db(self) -> DatabaseService:
        if self._engine_db is None:
            self._engine_db = DatabaseService(
                self.config.engine.url, root=self.config.root, what="warehouse"
            )
        return self._engine_db

    def xcom_backend(self) -> BaseXCom:
        if self._xcom_backend is None:
            self._xcom_backend = create_backend(
                self.config.xcom,
                self.metadata_db(),
                root=self.config.root,
                namespace=self.config.metadata.namespace,
            )
        return self._xcom_backend

    def xcom_service(self, flow_id: str | None = None, **defaults: Any) -> XComService:
        return XComService(self.xcom_backend(), default_flow_id=flow_id, **defaults)

    def run_store(self) -> RunStore:
        """Runs, task instances and batch ids in the metadata database."""
        from qarion_etl.run.history import RunStore

        return RunStore(self.metadata_db(), self.config.metadata.namespace)

    def secrets(self) -> list[str]:
        """Every secret of the configuration, longest first.

        The values of ``[credentials]``, the secrets of ``backend_config``, URLs from the
        environment, and every credential written in a URL of the configuration.
        """
        from qarion_etl.masking import secrets_in

        cfg = self.config
        found = set(
            secrets_in(cfg.credentials)
            + secrets_in(cfg.xcom.backend_config)
            + secrets_in([cfg.engine.url, cfg.metadata.url])
        )
        return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every secret of the configuration, and any URL credential, as ``***``."""
        from qarion_etl.masking import MASK, mask_url

        if self._secrets is None:
            self._secrets = self.secrets()
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_url(text)

    def close(self) -> None:
        backend, self._xcom_backend = self._xcom_backend, None
        if backend is not None:
            backend.close()
        for db in (self._metadata_db, self._engine_db):
            if db is not None:
                db.close()
        self._metadata_db = self._engine_db = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
