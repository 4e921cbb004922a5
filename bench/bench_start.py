"""`tbimg grid --count 10000` end to end, this tree against earlier commits of tbimg itself (issue 29's "2x
faster than today"), alternating in one run, medians.

    python bench/bench_start.py --against f2cb3d6~1 9db2f67 --runs 21

Each commit's `tbimg_cli/` comes out of git (`git archive`) into a temporary folder, byte-compiled, and is run
first on `sys.path` in the same venv, so that only tbimg's own code differs; the working tree runs as installed.
A run is a fresh `python -c` that calls `tbimg_cli.cli.main`, as the `tbimg` script does, writing into a
throwaway logdir; the data are `$TBIMG_DATA_DIR`'s (default ../shared/fashion-mnist).
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["grid", "--count", "10000"]


def tree_of(commit: str, into: Path) -> Path:
    """`commit`'s tbimg_cli/ under `into`, byte-compiled as an install would leave it."""
    archive = subprocess.run(["git", "archive", commit, "tbimg_cli"], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    compileall.compile_dir(into / "tbimg_cli", quiet=1)
    return into


def run_once(tree: Path | None, logdir: Path) -> float:
    first = f"sys.path.insert(0, {str(tree)!r}); " if tree else ""
    code = f"import sys; {first}sys.argv = ['tbimg', *{[*COMMAND, '--logdir', str(logdir)]!r}]; "
    code += "from tbimg_cli.cli import main; main()"
    env = {**os.environ, "TBIMG_DATA_DIR": str(DATA_DIR)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's Python runs: from byte-code
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", nargs="+", required=True, help="earlier commits to run beside this tree")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tbimg-bench-start-"))
    compileall.compile_dir(REPO / "tbimg_cli", quiet=1)
    trees: dict[str, Path | None] = {commit: tree_of(commit, work / str(i)) for i, commit in enumerate(args.against)}
    trees["this tree"] = None
    times: dict[str, list[float]] = {name: [] for name in trees}
    for tree in trees.values():  # one unmeasured run each: the page cache, as on a second run
        run_once(tree, work / "logs")
    for run in range(args.runs):
        for name, tree in trees.items() if run % 2 == 0 else reversed(trees.items()):
            times[name].append(run_once(tree, work / "logs"))
    now = statistics.median(times["this tree"])
    print(f"`tbimg {' '.join(COMMAND)}`, medians of {args.runs} alternating runs")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name}: {median * 1000:.1f} ms, {median / now:.2f}x this tree's time")


if __name__ == "__main__":
    main()
