"""The seed page's Python snippets, copied character for character.

Only the setup lines are ours (an ``engine``, and ``data``/``batch_id`` for the best
practices). The page lost its indentation when it was flattened; the one block that
needs it (``if result is None:``) is indented as Python requires, nothing else changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from qarion_etl.xcom import XComValueType

# The snippets below are the seed page's text: keep the formatter off them.
# fmt: off

def make_engine(tmp_path: Path) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'seed.db'}")


def manual_push_pull(engine: sqlalchemy.Engine) -> tuple[object, object, object]:
    # --- seed: "Manual Push/Pull in Python" ---------------------------------------------
    from qarion_etl.xcom import XComService
    from qarion_etl.xcom.backends.database import DatabaseXComBackend
    from qarion_etl.db_service import DatabaseService
    # Create XCom service
    db_service = DatabaseService(engine)
    backend = DatabaseXComBackend(db_service)
    xcom_service = XComService(
    backend=backend,
    default_flow_id="my_flow",
    default_batch_id=1
    )
    # Push a value
    xcom_service.push(
    task_id="my_task",
    value={"rows_processed": 1000, "status": "success"},
    key="processing_result"
    )
    # Pull a value
    result = xcom_service.pull(
    task_id="my_task",
    key="processing_result"
    )
    print(result) # {"rows_processed": 1000, "status": "success"}
    # Pull multiple values
    results = xcom_service.pull_many(
    task_ids=["task1", "task2", "task3"],
    key="return_value"
    )
    # --- end of seed ----------------------------------------------------------------------
    return xcom_service, result, results


def test_manual_push_pull(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xcom_service, result, results = manual_push_pull(make_engine(tmp_path))
    assert result == {"rows_processed": 1000, "status": "success"}
    assert capsys.readouterr().out == "{'rows_processed': 1000, 'status': 'success'}\n"
    assert results == {"task1": None, "task2": None, "task3": None}
    with sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'seed.db'}").connect() as conn:
        rows = conn.exec_driver_sql("SELECT flow_id, task_id, key, batch_id, value FROM qarion_xcom").all()
    assert rows == [("my_flow", "my_task", "processing_result", 1, '{"rows_processed":1000,"status":"success"}')]


def test_value_types_batch_tracking_and_best_practices(tmp_path: Path) -> None:
    xcom_service, _, _ = manual_push_pull(make_engine(tmp_path))

    # --- seed: "XCom Value Types" ---------------------------------------------------------
    # Push different types
    xcom_service.push(task_id="task1", value="text", value_type=XComValueType.STRING)
    xcom_service.push(task_id="task2", value=42, value_type=XComValueType.INTEGER)
    xcom_service.push(task_id="task3", value={"key": "value"}, value_type=XComValueType.JSON)
    # --- end of seed ----------------------------------------------------------------------
    assert xcom_service.pull_many(task_ids=["task1", "task2", "task3"], key="return_value") == {
        "task1": "text", "task2": 42, "task3": {"key": "value"}}

    # --- seed: "Batch and Run Tracking" -----------------------------------------------------
    # Push with batch tracking
    xcom_service.push(
    task_id="my_task",
    value={"count": 100},
    batch_id=5,
    dag_run_id="run_2024-01-15"
    )
    # Pull from specific batch
    result = xcom_service.pull(
    task_id="my_task",
    batch_id=5,
    dag_run_id="run_2024-01-15"
    )
    # --- end of seed ----------------------------------------------------------------------
    assert result == {"count": 100}
    assert xcom_service.pull(task_id="my_task") is None  # default batch 1 has no return_value

    data = {"rows": [1, 2, 3]}
    batch_id = 7
    # --- seed: "Best Practices" -------------------------------------------------------------
    xcom_service.push(task_id="task1", value=data, key="processed_data")
    xcom_service.push(task_id="task1", value=data, batch_id=batch_id)
    with pytest.raises(ValueError, match="Upstream task result not found"):
        result = xcom_service.pull(task_id="upstream_task")
        if result is None:
            raise ValueError("Upstream task result not found")
    xcom_service.push(
    task_id="task1",
    value=42,
    value_type=XComValueType.INTEGER
    )
    # --- end of seed ----------------------------------------------------------------------
    assert xcom_service.pull(task_id="task1", key="processed_data") == data
    assert xcom_service.pull(task_id="task1", batch_id=7) == data
    assert xcom_service.pull(task_id="task1") == 42  # replaced "text" in batch 1

    xcom_service.push(task_id="upstream_task", value={"ok": True})
    # --- seed: "Best Practices", error handling, once the upstream task has pushed ----------
    result = xcom_service.pull(task_id="upstream_task")
    if result is None:
        raise ValueError("Upstream task result not found")
    # --- end of seed ----------------------------------------------------------------------
    assert result == {"ok": True}

    xcom_service.push(task_id="old_task", value=1, flow_id="other_flow")
    # --- seed: "Best Practices", cleanup ------------------------------------------------------
    # Clear all values for a flow
    count = xcom_service.clear(flow_id="my_flow")
    # Clear values for a specific task
    count_task = xcom_service.clear(flow_id="my_flow", task_id="old_task")
    # --- end of seed (the second result renamed so both can be checked) ----------------------
    # my_task: processing_result@1, return_value@5/run; task1: return_value@1, @7,
    # processed_data@1; task2, task3, upstream_task: return_value@1
    assert count == 8
    assert count_task == 0
    assert xcom_service.pull(task_id="old_task", flow_id="other_flow") == 1


def test_clear_for_a_specific_task(tmp_path: Path) -> None:
    xcom_service, _, _ = manual_push_pull(make_engine(tmp_path))
    xcom_service.push(task_id="old_task", value=1)
    xcom_service.push(task_id="old_task", value=2, key="other", batch_id=3)
    # --- seed: "Best Practices", cleanup (second line) ----------------------------------------
    # Clear values for a specific task
    count = xcom_service.clear(flow_id="my_flow", task_id="old_task")
    # --- end of seed ----------------------------------------------------------------------
    assert count == 2
    assert xcom_service.pull(task_id="my_task", key="processing_result") is not None
