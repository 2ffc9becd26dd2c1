"""From ``[xcom].backend`` to a backend object: names, dotted paths, constructor options.

``backend`` is a built-in name (``database``, ``s3``, ``local_file``, ``memory``) or a
class path, ``package.module:Class`` or ``package.module.Class``. The project root is put
on ``sys.path`` first, so ``backends/my_xcom.py`` beside ``qarion-etl.toml`` is
``backends.my_xcom:MyXCom``. Anything that goes wrong while loading or building the
backend is a ``BackendLoadError`` (exit code 3) naming the path and the cause, raised
before any task runs; an unknown ``backend_config`` key is a ``ConfigError`` (exit 2)
with a "did you mean".
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qarion_etl.errors import BackendLoadError, ConfigError, QarionError, closest
from qarion_etl.xcom.base import BaseXCom

if TYPE_CHECKING:
    from qarion_etl.db.service import DatabaseService

#: Built-in backends by name, as ``module:Class`` strings so nothing is imported early.
BUILTIN_BACKENDS: dict[str, str] = {
    "database": "qarion_etl.xcom.backends.database:DatabaseXComBackend",
    "local_file": "qarion_etl.xcom.backends.local_file:LocalFileXComBackend",
    "memory": "qarion_etl.xcom.backends.memory:MemoryXComBackend",
    "s3": "qarion_etl.xcom.backends.s3:S3XComBackend",
}


class XComConfigLike(Protocol):
    """What ``create_backend`` reads from ``qarion_etl.definitions.config.XComConfig``."""

    @property
    def backend(self) -> str: ...
    @property
    def backend_config(self) -> Mapping[str, Any]: ...
    @property
    def max_value_bytes(self) -> int: ...


def _import_attr(module_name: str, attr_path: str, ref: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise BackendLoadError(
                f"cannot load XCom backend '{ref}': module '{missing}' not found"
            ) from exc
        raise BackendLoadError(
            f"cannot load XCom backend '{ref}': importing '{module_name}' failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:  # a syntax error or a failing import inside the user's module
        raise BackendLoadError(
            f"cannot load XCom backend '{ref}': importing '{module_name}' failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(module) if not n.startswith("_")]
            close = closest(part, names)
            hint = f"; did you mean '{close}'?" if close else ""
            raise BackendLoadError(
                f"cannot load XCom backend '{ref}': module '{module_name}' has no "
                f"attribute '{part}'{hint}"
            ) from None
    return obj


def _split(ref: str) -> tuple[str, str]:
    if ":" in ref:
        module_name, _, attr = ref.partition(":")
        if not module_name or not attr:
            raise BackendLoadError(
                f"cannot load XCom backend '{ref}': expected 'package.module:Class'"
            )
        return module_name, attr
    module_name, _, attr = ref.rpartition(".")
    return module_name, attr


def _ensure_on_path(root: Path | None) -> None:
    if root is not None:
        folder = str(Path(root).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)


def resolve_backend_class(ref: str, *, root: Path | str | None = None) -> type[BaseXCom]:
    """The backend class named by ``ref``.

    Args:
        ref: a built-in name, ``package.module:Class`` or ``package.module.Class``.
        root: the project root, put on ``sys.path`` for project-local backends.

    Raises:
        BackendLoadError: unknown name, module not importable, attribute missing, or not a
            ``BaseXCom`` subclass (exit code 3).
    """
    ref = str(ref).strip()
    target = BUILTIN_BACKENDS.get(ref)
    if target is None:
        if "." not in ref and ":" not in ref:
            close = closest(ref, BUILTIN_BACKENDS)
            hint = f"; did you mean '{close}'?" if close else ""
            raise BackendLoadError(
                f"unknown XCom backend '{ref}'{hint} (built-in: {', '.join(sorted(BUILTIN_BACKENDS))}; "
                "or a class path 'package.module:Class')"
            )
        target = ref
    _ensure_on_path(Path(root) if root is not None else None)
    module_name, attr = _split(target)
    cls = _import_attr(module_name, attr, ref)
    if not (inspect.isclass(cls) and issubclass(cls, BaseXCom)):
        what = "a class" if inspect.isclass(cls) else type(cls).__name__
        raise BackendLoadError(
            f"cannot load XCom backend '{ref}': {module_name}:{attr} is {what}, "
            "not a subclass of qarion_etl.xcom.BaseXCom"
        )
    return cls


def class_path(cls: type) -> str:
    """``module:QualName`` of a class (what ``config show`` prints)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def constructor_options(cls: type[BaseXCom]) -> tuple[set[str], bool]:
    """Keyword options a backend's constructor takes (after ``db_service``), and whether it takes ``**kwargs``."""
    params = list(inspect.signature(cls).parameters.values())
    if params and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        params = params[1:]
    names = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def create_backend(
    xcom_config: XComConfigLike,
    db_service: DatabaseService | None,
    *,
    root: Path | str | None = None,
    namespace: str | None = None,
) -> BaseXCom:
    """Build the configured backend as ``Backend(db_service, **backend_config)``.

    ``namespace`` and ``root`` are passed too when the constructor declares them and
    ``backend_config`` does not set them. ``max_value_bytes`` is set on the result.

    Raises:
        BackendLoadError: the class cannot be loaded, or its constructor fails (exit 3).
        ConfigError: ``backend_config`` has a key the constructor does not take (exit 2).
    """
    ref = xcom_config.backend
    cls = resolve_backend_class(ref, root=root)
    options = dict(xcom_config.backend_config or {})
    names, takes_any = constructor_options(cls)
    unknown = sorted(k for k in options if k not in names) if not takes_any else []
    if unknown:
        valid = sorted(n for n in names if n not in ("namespace", "root"))
        close = closest(unknown[0], valid)
        hint = f"; did you mean '{close}'?" if close else ""
        raise ConfigError(
            f"[xcom].backend_config: unknown option '{unknown[0]}' for {cls.__name__}{hint}"
            f" (options: {', '.join(valid) or 'none'})"
        )
    if "namespace" in names and "namespace" not in options and namespace is not None:
        options["namespace"] = namespace
    if "root" in names and "root" not in options and root is not None:
        options["root"] = Path(root)
    try:
        backend = cls(db_service, **options)
    except QarionError:
        raise
    except Exception as exc:
        raise BackendLoadError(
            f"XCom backend '{ref}' ({class_path(cls)}) failed in its constructor: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    backend.max_value_bytes = int(xcom_config.max_value_bytes)
    return backend
