"""Helpers shared by the benchmarks: timing whole processes and printing ratios."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / ".data"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured process: as a user's, with bytecode caches allowed
    (``PYTHONDONTWRITEBYTECODE`` makes every process compile every module again)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def compile_package() -> None:
    """Write the package's bytecode once, as an install does, before anything is timed."""
    import compileall

    compileall.compile_dir(str(ROOT / "qarion_etl"), quiet=1)


def qarion_cmd() -> list[str]:
    script = shutil.which("qarion-etl", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "qarion_etl"]


def time_process(
    argv: Sequence[str],
    *,
    repeat: int = 5,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[float, int]:
    """Median wall time (s) of running ``argv``, and the peak RSS (KiB) of the last child."""
    times = []
    full_env = child_env(env)
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return statistics.median(times), peak


def ratio_line(
    name: str,
    ours: float,
    raw: float,
    target: float | None = None,
    unit: str = "s",
    peer: str = "raw",
) -> str:
    """``name``, our figure beside the peer's (``raw`` by default) and their ratio."""
    ratio = ours / raw if raw else float("inf")
    verdict = ""
    if target is not None:
        verdict = f"  target <= {target:g}x: {'met' if ratio <= target else 'MISSED'}"
    return f"{name:<48} ours {ours:9.3f} {unit}  {peer} {raw:9.3f} {unit}  ratio {ratio:5.2f}x{verdict}"


def header(title: str) -> None:
    print(f"\n== {title} ==")
