"""Project configuration: finding, reading and validating ``qarion-etl.toml``.

The rest of the code receives one frozen ``ProjectConfig``. Unknown keys are errors with a
"did you mean"; references (``${env:…}``, ``${credential:…}``) are resolved here, and
everything under ``[credentials]`` becomes a ``Secret``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qarion_etl.definitions.interpolate import (
    ConnectionResolver,
    InterpolationError,
    connection_ref,
    interpolate,
    resolve_connection,
)
from qarion_etl.definitions.toml import KeyLocator, TomlSyntaxError, load_toml, type_names
from qarion_etl.errors import ConfigError, did_you_mean, shown_path, with_article
from qarion_etl.masking import MASK, SENSITIVE_NAME, Secret, mask, mask_url

CONFIG_FILE = "qarion-etl.toml"
CONFIG_ENV = "QARION_ETL_CONFIG"

DEFAULT_ENGINE_URL = "duckdb:///warehouse.duckdb"
DEFAULT_METADATA_URL = "sqlite:///.qarion/metadata.db"
DEFAULT_NAMESPACE = "qarion"
DEFAULT_MAX_VALUE_BYTES = 1_048_576

_ALLOWED: dict[str, set[str]] = {
    "project": {"name", "flows_dir"},
    "engine": {"url"},
    "metadata": {"url", "namespace"},
    "xcom": {"enabled", "backend", "xcom_backend", "backend_config", "max_value_bytes"},
}
_TOP = set(_ALLOWED) | {"credentials", "selectors"}


@dataclass(frozen=True, slots=True)
class ProjectSection:
    name: str = "qarion"
    flows_dir: str = "flows"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    url: str = DEFAULT_ENGINE_URL


@dataclass(frozen=True, slots=True)
class MetadataConfig:
    url: str = DEFAULT_METADATA_URL
    namespace: str = DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class XComConfig:
    """The ``[xcom]`` section; ``backend_config`` has its references resolved."""

    enabled: bool = True
    backend: str = "database"
    backend_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """The resolved configuration of one project."""

    root: Path
    path: Path | None
    project: ProjectSection = ProjectSection()
    engine: EngineConfig = EngineConfig()
    metadata: MetadataConfig = MetadataConfig()
    xcom: XComConfig = XComConfig()
    credentials: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: ``[selectors]``: named selections for ``run --selector NAME``; each is a union of
    #: ``--select`` values (``nightly = "tag:nightly,type:ingestion"``).
    selectors: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def flows_dir(self) -> Path:
        return self.root / self.project.flows_dir

    @property
    def state_dir(self) -> Path:
        """``.qarion/`` beside the config: run results, local state."""
        return self.root / ".qarion"

    def to_display(self) -> dict[str, Any]:
        """The configuration as plain data, secrets masked (for ``config show``)."""
        return {
            "config_file": str(self.path) if self.path else None,
            "root": str(self.root),
            "project": {"name": self.project.name, "flows_dir": self.project.flows_dir},
            "engine": {"url": _shown_url(self.engine.url)},
            "metadata": {
                "url": _shown_url(self.metadata.url),
                "namespace": self.metadata.namespace,
            },
            "xcom": {
                "enabled": self.xcom.enabled,
                "backend": self.xcom.backend,
                "backend_config": mask(dict(self.xcom.backend_config)),
                "max_value_bytes": self.xcom.max_value_bytes,
            },
            "credentials": {name: mask(dict(v)) for name, v in self.credentials.items()},
            "selectors": {name: list(v) for name, v in self.selectors.items()},
        }


def _shown_url(url: str) -> str:
    """A URL for display: wholly masked when it came from the environment, else its password."""
    return MASK if isinstance(url, Secret) else mask_url(url)


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``qarion-etl.toml`` in ``start`` or a parent folder."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    connections: ConnectionResolver | None = None,
) -> ProjectConfig:
    """Load the project configuration.

    ``path`` (from ``--config``) wins, then ``$QARION_ETL_CONFIG``, then the nearest
    ``qarion-etl.toml``. With none of them, the defaults apply with the working folder as
    the project root. ``connections`` resolves ``${airflow_conn:ID}`` references.
    """
    env = os.environ if env is None else env
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    if path is not None:
        cfg_path = Path(path)
        if cfg_path.is_dir():
            cfg_path = cfg_path / CONFIG_FILE
        if not cfg_path.is_file():
            raise ConfigError("configuration file not found", path=cfg_path)
    else:
        found = find_config()
        if found is None:
            return ProjectConfig(root=Path.cwd().resolve(), path=None)
        cfg_path = found
    return parse_config(cfg_path, env=env, connections=connections)


def parse_config(
    cfg_path: Path,
    *,
    env: Mapping[str, str],
    connections: ConnectionResolver | None = None,
) -> ProjectConfig:
    shown = shown_path(cfg_path)
    try:
        doc, text = load_toml(cfg_path)
    except TomlSyntaxError as exc:
        raise ConfigError(exc.message, path=shown, line=exc.line, hint=exc.hint) from exc
    loc = KeyLocator(text)

    def fail(message: str, line: int | None = None, hint: str | None = None) -> ConfigError:
        return ConfigError(message, path=shown, line=line, hint=hint)

    for key in doc:
        if key not in _TOP:
            raise fail(
                f"unknown section '{key}'{did_you_mean(key, _TOP)}",
                loc.key_line(key) or loc.table_line(key),
            )
    for section, allowed in _ALLOWED.items():
        table = doc.get(section, {})
        if not isinstance(table, dict):
            raise fail(f"'{section}' must be a table", loc.key_line(section))
        for key in table:
            if key not in allowed:
                raise fail(
                    f"unknown key '{key}' in [{section}]{did_you_mean(key, allowed)}",
                    loc.key_line(key, section),
                )

    raw_creds = doc.get("credentials", {})
    if not isinstance(raw_creds, dict) or not all(
        isinstance(v, dict) or connection_ref(v) for v in raw_creds.values()
    ):
        raise fail(
            'credentials must be tables: [credentials.NAME], or NAME = "${airflow_conn:ID}"',
            loc.table_line("credentials"),
        )
    try:
        # Credentials may use ${env:…} or be an Airflow connection; every value is a secret.
        credentials: dict[str, dict[str, Any]] = {}
        for name, table in raw_creds.items():
            where = f"credentials.{name}"
            conn_id = connection_ref(table)
            if conn_id is not None:
                table = resolve_connection(conn_id, connections, where, as_credentials=True)
            else:
                table = interpolate(table, env, {}, where, connections)
            credentials[name] = {k: _as_secret(v) for k, v in table.items()}
        resolved = {
            section: interpolate(doc.get(section, {}), env, credentials, section, connections)
            for section in _ALLOWED
        }
    except InterpolationError as exc:
        raise fail(str(exc)) from exc

    def get(section: str, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = resolved[section].get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = type_names(kind)
            raise fail(
                f"[{section}].{key} must be {with_article(names)}, got {value!r}",
                loc.key_line(key, section),
            )
        return value

    xcom = resolved["xcom"]
    if "backend" in xcom and "xcom_backend" in xcom and xcom["backend"] != xcom["xcom_backend"]:
        raise fail(
            "[xcom] sets both 'backend' and its alias 'xcom_backend' to different values",
            loc.key_line("xcom_backend", "xcom"),
        )
    backend = xcom.get("backend", xcom.get("xcom_backend", "database"))
    if not isinstance(backend, str) or not backend.strip():
        raise fail(
            "[xcom].backend must be a backend name or a 'package.module:Class' path",
            loc.key_line("backend", "xcom"),
        )
    backend_config = mark_sensitive(get("xcom", "backend_config", dict, {}))
    max_bytes = get("xcom", "max_value_bytes", int, DEFAULT_MAX_VALUE_BYTES)
    if max_bytes <= 0:
        raise fail(
            "[xcom].max_value_bytes must be positive", loc.key_line("max_value_bytes", "xcom")
        )

    selectors = _selectors(doc.get("selectors", {}), loc, fail)

    namespace = get("metadata", "namespace", str, DEFAULT_NAMESPACE)
    if not namespace.replace("_", "").isalnum():
        raise fail(
            f"[metadata].namespace must be letters, digits and '_', got {namespace!r}",
            loc.key_line("namespace", "metadata"),
        )

    return ProjectConfig(
        root=cfg_path.resolve().parent,
        path=cfg_path.resolve(),
        project=ProjectSection(
            name=get("project", "name", str, cfg_path.resolve().parent.name),
            flows_dir=get("project", "flows_dir", str, "flows"),
        ),
        engine=EngineConfig(url=get("engine", "url", str, DEFAULT_ENGINE_URL)),
        metadata=MetadataConfig(
            url=get("metadata", "url", str, DEFAULT_METADATA_URL), namespace=namespace
        ),
        xcom=XComConfig(
            enabled=get("xcom", "enabled", bool, True),
            backend=backend.strip(),
            backend_config=MappingProxyType(backend_config),
            max_value_bytes=max_bytes,
        ),
        credentials=MappingProxyType({k: MappingProxyType(v) for k, v in credentials.items()}),
        selectors=MappingProxyType(selectors),
    )


def _selectors(
    table: Any, loc: KeyLocator, fail: Callable[[str, int | None], ConfigError]
) -> dict[str, tuple[str, ...]]:
    """``[selectors]``: each name a string of ``--select`` values, or a list of them (a union)."""
    if not isinstance(table, dict):
        raise fail(
            "'selectors' must be a table: [selectors] NAME = \"tag:nightly\"",
            loc.key_line("selectors"),
        )
    out: dict[str, tuple[str, ...]] = {}
    for name, value in table.items():
        line = loc.key_line(name, "selectors")
        if not name or not all(c.isalnum() and c.isascii() or c in "_-" for c in name):
            raise fail(f"selector name {name!r} must be letters, digits, '_' or '-'", line)
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise fail(
                f"[selectors].{name} must be a string or a list of strings, got {value!r}", line
            )
        if not any(v.split() for v in values):
            raise fail(f"[selectors].{name} selects nothing: give it --select values", line)
        out[name] = tuple(values)
    return out


def _as_secret(value: Any) -> Any:
    return Secret(value) if isinstance(value, str) else value


def mark_sensitive(value: Any, *, inside_credentials: bool = False) -> Any:
    """Make secrets of strings under a ``credentials`` key or a key that names a secret."""
    if isinstance(value, dict):
        return {
            k: mark_sensitive(
                v,
                inside_credentials=inside_credentials
                or k == "credentials"
                or bool(SENSITIVE_NAME.search(k)),
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mark_sensitive(v, inside_credentials=inside_credentials) for v in value]
    return _as_secret(value) if inside_credentials else value
