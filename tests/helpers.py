"""Helpers for tests: temporary projects and an in-process CLI runner."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FLOWS = Path(__file__).parent / "fixtures" / "flows"

DEFAULT_CONFIG = """\
[project]
name = "test"
flows_dir = "flows"

[engine]
url = "{engine_url}"

[metadata]
url = "{metadata_url}"
namespace = "{namespace}"

[xcom]
enabled = true
backend = "database"
backend_config = {{}}
"""


def make_project(
    tmp_path: Path,
    *,
    config: str | None = None,
    engine_url: str | None = None,
    metadata_url: str | None = None,
    namespace: str = "qarion",
    example: bool = True,
) -> Path:
    """A project in ``tmp_path``: the example flow and data, and a config file."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if example:
        (tmp_path / "flows").mkdir(exist_ok=True)
        (tmp_path / "data").mkdir(exist_ok=True)
        shutil.copy(
            ROOT / "flows" / "data_pipeline.toml", tmp_path / "flows" / "data_pipeline.toml"
        )
        shutil.copy(ROOT / "data" / "orders.csv", tmp_path / "data" / "orders.csv")
    if config is None:
        config = DEFAULT_CONFIG.format(
            engine_url=engine_url or f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
            metadata_url=metadata_url or f"sqlite:///{tmp_path / '.qarion' / 'metadata.db'}",
            namespace=namespace,
        )
    (tmp_path / "qarion-etl.toml").write_text(textwrap.dedent(config))
    return tmp_path


def write_flow(project: Path, name: str, text: str) -> Path:
    path = project / "flows" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def cli(
    *args: str | Path,
    project: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
):
    """Run ``qarion-etl ARGS`` in process; returns the click Result (stdout and stderr apart)."""
    from qarion_etl.cli.main import app

    runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "120", **(env or {})})
    argv = [str(a) for a in args]
    if project is not None:
        argv = ["--config", str(project / "qarion-etl.toml"), *argv]
    return runner.invoke(app, argv, input=input, catch_exceptions=False)
