"""One self-contained HTML page of a run (or of a flow): ``qarion-etl report`` and ``graph --format html``.

Everything the page needs is inline (style, script, SVG); its Content-Security-Policy
forbids fetching anything, so opening the file makes no network request, and lets only
the page's own style and script run, named by their SHA-256 hashes (computed here from
the text that is inlined, never ``'unsafe-inline'``). Text reaches the page through
Jinja's autoescaping; the run's data is already masked (``report.data``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.report.colours import status_css
from qarion_etl.report.data import RunView, moment
from qarion_etl.report.svg import STATUSES, graph_svg, timeline_svg
from qarion_etl.report.text import HIDDEN, visible

if TYPE_CHECKING:
    import jinja2


def _asset(name: str) -> str:
    return (resources.files("qarion_etl.report") / "templates" / name).read_text(encoding="utf-8")


_hidden = HIDDEN.search


@cache
def assets() -> tuple[str, str]:
    """The style sheet and the script every page inlines."""
    return status_css() + _asset("report.css"), _asset("report.js")


def source_hash(text: str) -> str:
    """The CSP source of an inline ``<script>`` or ``<style>`` whose text is ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_policy(*, live: bool = False) -> str:
    """The Content-Security-Policy of a page opened from a file (a ``<meta>`` element).

    Nothing is fetched, only the page's own style and script apply; ``live`` (the web UI
    polling a run in progress) may ask its own server. ``frame-ancestors`` has no effect
    in a ``<meta>`` policy: the web UI sends it as a header.
    """
    css, script = assets()
    parts = [
        "default-src 'none'",
        f"script-src {source_hash(script)}",
        f"style-src {source_hash(css)}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    if live:
        parts.append("connect-src 'self'")
    return "; ".join(parts)


@cache
def environment() -> jinja2.Environment:
    """The Jinja environment of the pages (the report and the web UI)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("qarion_etl.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
    )
    env.filters.update(
        seconds=format_seconds,
        duration=format_duration,
        when=format_when,
        first_line=first_line,
        config=config_value,
    )
    css, script = assets()
    env.globals.update(css=css, script=script, statuses=STATUSES, page_policy=page_policy)
    return env


def _visible(value: Any) -> Any:
    """Every text a template writes, with hidden and reordering characters made visible
    (markup the code built, such as the SVG, has done so itself)."""
    if value.__class__ is str and _hidden(value):
        return visible(value)
    return value


def config_value(value: Any) -> str:
    """A config value as the page shows it: text as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def format_seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f}s"
    minutes, secs = divmod(int(round(value)), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def format_duration(value: float | None) -> str:
    """A duration as the pages show it: milliseconds under a second, else as ``seconds``."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return format_seconds(value)


def format_when(value: str | None) -> str:
    if not value:
        return ""
    try:
        return moment(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


def first_line(value: str) -> str:
    lines = value.strip().splitlines()
    return lines[0] if lines else ""


def render_report(view: RunView, **page: Any) -> str:
    """The page of ``view`` as HTML text.

    ``page`` adds what the web UI needs: ``served`` (the server sends the policy, so the
    page carries none), ``nav`` (label, href pairs), ``live`` (the URL the page polls while
    the run goes on) with its ``stamp``, ``task_links`` (task history), ``grid`` (the
    flow's runs × tasks, with ``grid_runs``).
    """
    from qarion_etl import __version__

    title = f"{view.flow_id} · {view.dag_run_id}" if view.dag_run_id else view.flow_id
    context: dict[str, Any] = {
        "served": False,
        "view": view,
        "title": f"{title} · qarion-etl",
        "graph": graph_svg(view),
        "timeline": timeline_svg(view) if view.dag_run_id else "",
        "version": __version__,
        "written": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **page,
    }
    return environment().get_template("report.html.j2").render(context)


def write_report(view: RunView, path: Path) -> Path:
    """Write the page of ``view`` to ``path`` atomically (a half-written report never shows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_report(view), encoding="utf-8")
    tmp.replace(path)
    return path
