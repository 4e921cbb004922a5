"""Helpers shared by the benchmarks: alternating runs, medians, peak RSS, the Keras cache.

Machines here are noisy, so every comparison runs its contenders alternately
in one process tree and reports medians and ratios, never single timings.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TBIMG_DATA_DIR") or REPO.parent / "shared" / "fashion-mnist")
RESULTS = REPO / "bench" / "results"
TBIMG = [str(Path(sys.executable).parent / "tbimg")]
PYTHON = sys.executable
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def keras_home_with_data() -> Path:
    """A throwaway KERAS_HOME whose cache links to the shared files, so the
    tutorial's `fashion_mnist.load_data()` reads them instead of downloading."""
    home = Path(tempfile.mkdtemp(prefix="bench-keras-"))
    cache = home / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (cache / name).symlink_to(DATA_DIR / name)
    return home


def run_measured(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB (the child's high-water mark, from wait4) and stdout.

    Linux starts a child's high-water mark from its parent's RSS at the fork, so benchmarks keep
    their own process small (heavy work measured in-process runs in a child of its own)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read().decode()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def alternate(cases: dict[str, dict], runs: int) -> dict[str, dict]:
    """Run each case once per round, rounds `runs` times; per case the list of (seconds, rss, stdout)."""
    samples = {name: [] for name in cases}
    for round_no in range(runs):
        for name, case in cases.items():
            seconds, rss, out = run_measured(case["cmd"], case.get("env"), case.get("cwd"))
            if case.get("reports_seconds"):  # the case times itself (a server's shutdown is not its work)
                seconds = json.loads(out)["seconds"]
            samples[name].append((seconds, rss, out))
        print(f"  round {round_no + 1}/{runs} done", file=sys.stderr)
    return {
        name: {
            "seconds": [s for s, _, _ in got],
            "median_s": statistics.median(s for s, _, _ in got),
            "peak_rss_mb": max(r for _, r, _ in got),
            "stdout": [o for _, _, o in got],
        }
        for name, got in samples.items()
    }


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    for result in payload.get("cases", {}).values():
        result.pop("stdout", None)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    return path


def row(label: str, value: str, target: str = "", ok: bool | None = None) -> str:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    return f"| {label} | {value} | {target} | {verdict} |"


def print_table(title: str, rows: list[str]) -> None:
    print(f"\n### {title}\n")
    print("| measure | result | target | |")
    print("|---|---|---|---|")
    for line in rows:
        print(line)
