"""State shared by all commands: global options and the lazily loaded project."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from qarion_etl.project import Project


@dataclass
class AppState:
    config_path: str | None = None
    debug: bool = False
    #: The command prints a JSON document on stdout (workflow commands then go to stderr).
    json_stdout: bool = False
    _project: Project | None = field(default=None, repr=False)

    def project(self) -> Project:
        if self._project is None:
            from qarion_etl.project import Project

            self._project = Project.load(self.config_path)
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()
            self._project = None


def get_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(debug=os.environ.get("QARION_ETL_DEBUG", "") not in ("", "0"))
        root.call_on_close(root.obj.close)
    return root.obj


def get_project(ctx: typer.Context) -> Project:
    """The project named by ``--config`` / ``QARION_ETL_CONFIG`` / the nearest config file."""
    return get_state(ctx).project()


def run_id_of(ctx: typer.Context, run: str | None, flow: str | None = None) -> str | None:
    """``run`` as given, or for ``latest`` the newest run's id (of ``flow`` if given)."""
    if run != "latest":
        return run
    return get_project(ctx).run_store().find_run("latest", flow).dag_run_id
