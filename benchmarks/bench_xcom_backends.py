"""XCom push/pull throughput of the ``local_file`` and ``s3`` backends beside ``database``.

``python -m benchmarks xcom_backends``. The database is SQLite in a temporary folder, the
local files live on the same disk, and S3 is moto's server on 127.0.0.1 (its own
process, over real HTTP through boto3): its figures show the client's overhead per
request, not a real bucket's latency (expect 10-50 ms per request against AWS from
outside its region). Ratios are against the database backend.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import header

N_SINGLE = 400
N_BATCH = 1000
BIG_BYTES = 256 * 1024
REPEAT = 3  # best of, for the local backends (S3 on moto runs once)


def _rate(n: int, fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def _moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in its own process, so it does not share this one's GIL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


def _backends(tmp: Path, endpoint: str) -> dict[str, Any]:
    import boto3

    from qarion_etl.db_service import DatabaseService
    from qarion_etl.xcom.backends.database import DatabaseXComBackend
    from qarion_etl.xcom.backends.local_file import LocalFileXComBackend
    from qarion_etl.xcom.backends.s3 import S3XComBackend

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
    db = DatabaseService(f"sqlite:///{tmp / 'meta.db'}")
    return {
        "database (sqlite)": DatabaseXComBackend(db),
        "local_file": LocalFileXComBackend(base_path=tmp / "xcom"),
        "local_file (fsync off)": LocalFileXComBackend(base_path=tmp / "xcom-nosync", fsync=False),
        "s3 (moto server, 127.0.0.1)": S3XComBackend(bucket="bench", endpoint_url=endpoint),
        "database + offload (local_file)": DatabaseXComBackend(
            db,
            table_name="bench_offload",
            offload_threshold_bytes=64 * 1024,
            offload_to={"type": "local_file", "base_path": str(tmp / "offload")},
        ),
    }


def _measure(backend: Any) -> dict[str, float]:
    from qarion_etl.xcom import XComService

    svc = XComService(backend, default_flow_id="bench", default_dag_run_id="r1", default_batch_id=1)
    value = {"rows_loaded": 1000, "status": "success", "target_dataset": "orders_landing"}
    big = {"pad": "x" * BIG_BYTES}
    out = {
        "push": _rate(N_SINGLE, lambda: [svc.push(f"t{i}", value) for i in range(N_SINGLE)]),
        "pull": _rate(N_SINGLE, lambda: [svc.pull(f"t{i}") for i in range(N_SINGLE)]),
        "push_many": _rate(
            N_BATCH,
            lambda: svc.push_many([{"task_id": f"b{i}", "value": value} for i in range(N_BATCH)]),
        ),
        "list": _rate(N_SINGLE + N_BATCH, lambda: svc.list(limit=None)),
        "clear": _rate(N_SINGLE + N_BATCH, lambda: svc.clear()),
        "push 256KB": _rate(20, lambda: [svc.push(f"g{i}", big) for i in range(20)]),
        "pull 256KB": _rate(20, lambda: [svc.pull(f"g{i}") for i in range(20)]),
    }
    svc.clear()
    return out


def main() -> None:
    header("XCom backends: values per second (ratio to the database backend)")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server, endpoint = _moto()
    try:
        with tempfile.TemporaryDirectory(prefix="qarion-bench-") as tmp:
            backends = _backends(Path(tmp), endpoint)
            results = {}
            for name, backend in backends.items():
                rounds = [_measure(backend) for _ in range(1 if "s3" in name else REPEAT)]
                results[name] = {op: max(r[op] for r in rounds) for op in rounds[0]}
            for backend in backends.values():
                backend.close()
    finally:
        server.terminate()
        server.wait(10)
    ops = list(next(iter(results.values())))
    base = results["database (sqlite)"]
    print(f"{'backend':<34}" + "".join(f"{op:>16}" for op in ops))
    for name, figures in results.items():
        cells = "".join(f"{figures[op]:>9.0f} {figures[op] / base[op]:>5.2f}x" for op in ops)
        print(f"{name:<34}{cells}")
    print(
        "(push/pull: one value per call, run and batch given; push_many: one call of "
        f"{N_BATCH}; list/clear: {N_SINGLE + N_BATCH} values; 256KB: values of {BIG_BYTES} bytes)"
    )


if __name__ == "__main__":
    main()
