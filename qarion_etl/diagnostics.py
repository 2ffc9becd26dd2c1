"""``doctor``: check that every store of a project can be reached and used."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from qarion_etl.errors import QarionError
from qarion_etl.project import Project
from qarion_etl.xcom.registry import class_path, resolve_backend_class


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def backend_class_path(project: Project) -> str:
    """The class the configured XCom backend resolves to, as ``module:Class``.

    Raises:
        BackendLoadError: the class cannot be imported (exit 3), as ``run`` would.
    """
    cls = resolve_backend_class(project.config.xcom.backend, root=project.config.root)
    return class_path(cls)


def _failed(name: str, exc: BaseException) -> Check:
    code = exc.exit_code if isinstance(exc, QarionError) else 3
    return Check(name, False, str(exc), code)


def run_checks(project: Project) -> list[Check]:
    """Reach each store in turn; a failure is a failed check, never an exception.

    Every detail has the project's secrets scrubbed: a driver's error or a backend's
    ``describe()`` may name a URL with its password.
    """
    checks = _checks(project)
    for check in checks:
        check.detail = project.scrub(check.detail)
    return checks


def _checks(project: Project) -> list[Check]:
    checks: list[Check] = []
    for name, get in (
        ("warehouse engine", project.engine_db),
        ("metadata database", project.metadata_db),
    ):
        try:
            db = get()
            db.check()
            checks.append(Check(name, True, f"{db.dialect.name} at {db.url}"))
        except Exception as exc:  # every failure is reported, none stops the others
            checks.append(_failed(name, exc))
    if not project.config.xcom.enabled:
        checks.append(Check("xcom backend", True, "XCom is disabled ([xcom].enabled = false)"))
        return checks
    label = ""
    try:
        backend = project.xcom_backend()
        where = backend.describe()
        cls = f"{type(backend).__module__}:{type(backend).__qualname__}"
        label = f"{cls}{' at ' + where if where else ''}"
        service = project.xcom_service(flow_id="__doctor__")
        probe_task, token = f"probe_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        probes: list[Any] = [{"token": token}]
        offload = backend.offload_threshold_bytes
        if offload is not None and (
            backend.max_value_bytes is None or offload + 16 < backend.max_value_bytes
        ):
            probes.append({"token": token, "pad": "x" * (offload + 1)})  # goes to the offload store
        for i, probe in enumerate(probes):
            service.push(probe_task, probe, key=f"probe{i}", dag_run_id="doctor")
            back = service.pull(probe_task, key=f"probe{i}", dag_run_id="doctor")
            if back != probe:
                raise QarionError(f"wrote a probe value but read back {str(back)[:60]!r}")
        # Exactly the identity pushed (a clear that needs dag_id, task_id and run_id works).
        removed = service.clear(flow_id="__doctor__", task_id=probe_task, dag_run_id="doctor")
        checks.append(
            Check("xcom backend", True, f"{label} (write, read, clear: {removed} removed)")
        )
    except Exception as exc:
        failed = _failed("xcom backend", exc)
        failed.detail = f"{label}: {failed.detail}" if label else failed.detail
        checks.append(failed)
    return checks
