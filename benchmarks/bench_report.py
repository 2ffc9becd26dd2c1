"""Pictures at scale: a run of 1,000 tasks as a report file and in the web UI.

Printed: the report's size (target 2 MB or less) and the time to write it; the time
chromium takes to show it from ``file://`` (target under 2 s) beside the time it takes
to show a plain page of the same size (the browser's own floor); and the server time of
each UI page (``Server-Timing``, target under 200 ms), the flow page's grid and a task's
duration chart over a flow run 25 times among them, beside the JSON state of a run.
Needs Debian's chromium and Playwright for the browser line.
"""

from __future__ import annotations

import html
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from benchmarks.common import DATA, child_env, header, qarion_cmd, ratio_line

TASKS = 1000
#: A second flow, run many times: the flow page's grid of runs x tasks and a task's chart.
WIDE_TASKS, WIDE_RUNS = 40, 25


def _chains(flow: str, prefix: str, tasks: int, length: int) -> str:
    """A flow of ``tasks`` trivial transformations in chains of ``length``."""
    parts = [f'id = "{flow}"\nnamespace = "{flow}"\n']
    for i in range(tasks):
        deps = f'dependencies = ["{prefix}{i - 1}"]\n' if i % length else ""
        parts.append(
            f'[[tasks]]\nid = "{prefix}{i}"\ntype = "transformation"\n{deps}'
            f'[tasks.config]\nsql = "SELECT {i} AS x"\n'
        )
    return "\n".join(parts)


def _project() -> Path:
    folder = DATA / "proj_report"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "flows").mkdir(parents=True)
    (folder / "qarion-etl.toml").write_text('[engine]\nurl = "duckdb:///warehouse.duckdb"\n')
    (folder / "flows" / "many.toml").write_text(_chains("many", "t", TASKS, 10))
    (folder / "flows" / "wide.toml").write_text(_chains("wide", "w", WIDE_TASKS, 4))
    runs = [("many", "big")] + [("wide", f"w{n:02d}") for n in range(WIDE_RUNS)]
    for flow, run_id in runs:
        subprocess.run(
            [*qarion_cmd(), "run", flow, "--run-id", run_id],
            cwd=folder,
            check=False,  # a failed run is drawn like any other
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return folder


def _browser_times(report: Path) -> tuple[float, float] | None:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    plain = report.with_name("plain.html")
    text = report.read_text()
    plain.write_text(f"<!doctype html><pre>{html.escape(text[: len(text) * 9 // 10])}</pre>")
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
        for path, ready in ((report, "svg.graph g.node"), (plain, "pre")):
            best = float("inf")
            for _ in range(3):
                page = browser.new_page()
                start = time.perf_counter()
                page.goto(path.as_uri(), wait_until="load")
                page.locator(ready).first.wait_for()
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(null)))")
                best = min(best, time.perf_counter() - start)
                page.close()
            out.append(best)
        browser.close()
    return out[0], out[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_ms(url: str, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
            timing = r.headers.get("Server-Timing", "app;dur=nan")
        best = min(best, float(timing.split("dur=")[1]))
    return best


def _ui(folder: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*qarion_cmd(), "ui", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env({"NO_COLOR": "1"}),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/api/runs/many/big", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        floor = _server_ms(base + "/api/runs/many/big")
        for name, path in (
            ("runs list", "/"),
            ("run page (1,000 tasks)", "/runs/many/big"),
            ("flow page", "/flows/many"),
            (f"flow page, grid {WIDE_RUNS} x {WIDE_TASKS}", "/flows/wide"),
            ("task history", "/tasks/many/t5"),
            (f"task durations, {WIDE_RUNS} runs", "/tasks/wide/w7"),
            ("XCom browser", "/xcoms"),
            ("XCom browser, filtered", "/xcoms?task=t5"),
        ):
            ms = _server_ms(base + path)
            verdict = "met" if ms < 200 else "MISSED"
            print(f"ui {name:<30} server {ms:7.1f} ms  target < 200 ms: {verdict}")
        print(f"ui {'run state (JSON, no page)':<30} server {floor:7.1f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    header(f"report and UI, a run of {TASKS:,} tasks")
    folder = _project()
    start = time.perf_counter()
    done = subprocess.run(
        [*qarion_cmd(), "report", "big"], cwd=folder, check=True, capture_output=True, text=True
    )
    wrote = time.perf_counter() - start
    report = Path(done.stdout.strip())
    size = report.stat().st_size / 1e6
    verdict = "met" if size <= 2 else "MISSED"
    print(f"report size {size:.2f} MB ({wrote:.2f} s to write)  target <= 2 MB: {verdict}")
    times = _browser_times(report)
    if times is None:
        print("report in the browser: skipped (needs chromium and playwright)")
    else:
        shown, plain = times
        print(
            ratio_line("report shown in chromium vs a plain page its size", shown, plain)
            + f"  target < 2 s: {'met' if shown < 2 else 'MISSED'}"
        )
    _ui(folder)


if __name__ == "__main__":
    main()
