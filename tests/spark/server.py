"""Spark servers for tests and benchmarks: a Spark Connect server, and a standalone cluster.

Everything runs from the installed ``pyspark`` package (its jars and ``bin/spark-class``),
in a session of its own (stopped by killing the process group), bound to 127.0.0.1 on
free ports, with every web UI off or on 127.0.0.1. ``SPARK_LOCAL_IP=127.0.0.1`` makes the
driver, the block managers, the master, the workers and their UIs bind there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CONNECT_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def java_missing() -> str | None:
    """Why no Spark server can start here (no Java, no full pyspark), or ``None``."""
    if shutil.which("java") is None:
        return "no Java (apt-get install -y openjdk-17-jre-headless)"
    try:
        home = spark_home()
    except ImportError:
        return "pyspark is not installed (pip install -e '.[dev]')"
    if not (home / "bin" / "spark-class").exists():
        return "this pyspark has no jars (the light client): pip install 'pyspark[connect]'"
    return None


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK")}
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOG_DIR=str(workdir / "logs"),
        SPARK_CONF_DIR=str(workdir / "conf"),
    )
    (workdir / "conf").mkdir(parents=True, exist_ok=True)
    return env


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Spark process exited ({proc.returncode}):\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, then SIGKILL to what is left."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Cluster:
    """Processes started for one Spark deployment (stopped in reverse order)."""

    workdir: Path
    url: str = ""
    port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    event_log: Path | None = None

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        self.procs.clear()

    @property
    def sessions(self) -> list[int]:
        return [p.pid for p in self.procs]


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_connect(
    workdir: Path,
    *,
    master: str = "local[2]",
    cluster: Cluster | None = None,
    timeout: float = 180.0,
    event_log: bool = False,
    confs: dict[str, str] | None = None,
) -> Cluster:
    """A Spark Connect server on a free 127.0.0.1 port (``cluster.url`` is its ``sc://`` URL)."""
    deployment = cluster or Cluster(workdir)
    env = _env(workdir)
    port = free_port()
    confs = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.warehouse.dir": str(workdir / "warehouse"),
        "spark.local.dir": str(workdir / "tmp"),
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.catalogImplementation": "in-memory",
        **(confs or {}),
    }
    if event_log:
        deployment.event_log = workdir / "events"
        deployment.event_log.mkdir(parents=True, exist_ok=True)
        confs["spark.eventLog.enabled"] = "true"
        confs["spark.eventLog.dir"] = deployment.event_log.as_uri()
        confs["spark.eventLog.compress"] = "false"
        confs["spark.eventLog.rolling.enabled"] = "false"
    argv = [
        str(spark_home() / "bin" / "spark-submit"),
        "--class",
        CONNECT_CLASS,
        "--master",
        master,
        "--driver-memory",
        "1g",
        *[a for k, v in confs.items() for a in ("--conf", f"{k}={v}")],
        "spark-internal",
    ]
    log = workdir / "logs" / "connect.log"
    proc = _spawn(argv, env, log)
    deployment.procs.append(proc)
    try:
        _wait_port(port, proc, log, timeout)
    except BaseException:
        deployment.stop()
        raise
    deployment.url = f"sc://127.0.0.1:{port}"
    deployment.port = port
    return deployment


def start_standalone(workdir: Path, workers: int = 2, timeout: float = 240.0) -> Cluster:
    """A standalone master and ``workers`` workers (one core, 1 GB each) on 127.0.0.1."""
    cluster = Cluster(workdir)
    env = _env(workdir)
    spark_class = str(spark_home() / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    master = _spawn(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        ],
        env,
        workdir / "logs" / "master.log",
    )
    cluster.procs.append(master)
    try:
        _wait_port(port, master, workdir / "logs" / "master.log", timeout)
        for i in range(workers):
            wenv = {**env, "SPARK_WORKER_DIR": str(workdir / f"worker{i}")}
            log = workdir / "logs" / f"worker{i}.log"
            worker_port, worker_ui = free_port(), free_port()
            proc = _spawn(
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    f"spark://127.0.0.1:{port}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(worker_port),
                    "--webui-port",
                    str(worker_ui),
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                ],
                wenv,
                log,
            )
            cluster.procs.append(proc)
            _wait_port(worker_port, proc, log, timeout)
    except BaseException:
        cluster.stop()
        raise
    cluster.url = f"spark://127.0.0.1:{port}"
    cluster.port = port
    return cluster
