"""The README's import path for a flow's DAG as a ``networkx.DiGraph`` (``qarion_etl.definitions.dag``).

::

    from qarion_etl.dag import build_dag
    from qarion_etl.project import Project

    flow = Project.load().load_flow("data_pipeline")
    graph = build_dag(flow)   # nodes carry ``spec``, edges ``reason`` ("dependency" or "dataset")
"""

from qarion_etl.definitions.dag import build_dag, topological_order

__all__ = ["build_dag", "topological_order"]
