"""The local web UI (``qarion-etl ui``): ``create_app`` and ``serve``.

Needs Starlette and uvicorn (``pip install 'qarion-etl[ui]'``); the rest of qarion-etl
never imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qarion_etl.errors import UsageError

if TYPE_CHECKING:
    from qarion_etl.project import Project

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def serve(project: Project, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the UI until Ctrl-C."""
    try:
        import uvicorn

        from qarion_etl.ui.app import create_app
    except ImportError as exc:
        raise UsageError(f"the web UI needs {exc.name}: pip install 'qarion-etl[ui]'") from None
    app = create_app(project)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run()
    finally:
        app.state.viewer.close()
