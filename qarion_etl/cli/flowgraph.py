"""The project's graph of flows (``qarion-etl graph`` without a flow).

One node per flow, one edge per pair of flows where a task of the second reads a dataset of
the first through ``ref()``, labelled with those datasets. Text, mermaid or JSON.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from qarion_etl.errors import UsageError

if TYPE_CHECKING:
    from qarion_etl.definitions.refs import ModelIndex

FORMATS = ("text", "mermaid", "json")


def draw_flows(index: ModelIndex, fmt: str) -> str:
    """The flows of ``index`` and the ref edges between them, in ``fmt``."""
    if fmt not in FORMATS:
        raise UsageError(f"graph without a flow draws {', '.join(FORMATS)} (not '{fmt}')")
    edges = sorted(index.flow_edges().items())
    flows = sorted(index.flows)
    if fmt == "json":
        doc = {
            "flows": flows,
            "edges": [{"from": a, "to": b, "datasets": ds} for (a, b), ds in edges],
        }
        return json.dumps(doc, indent=2)
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        lines += [f'    {_node(f)}["{f}"]' for f in flows]
        lines += [f'    {_node(a)} -->|"{", ".join(ds)}"| {_node(b)}' for (a, b), ds in edges]
        return "\n".join(lines)
    lines = [f"{len(flows)} flows"]
    for flow in flows:
        ups = [f"{a} ({', '.join(ds)})" for (a, b), ds in edges if b == flow]
        lines.append(f"  {flow}" + (f"  <- {'; '.join(ups)}" if ups else ""))
    return "\n".join(lines)


def _node(flow_id: str) -> str:
    return "f_" + "".join(c if c.isalnum() else "_" for c in flow_id)
