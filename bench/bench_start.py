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
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR, alternate

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["grid", "--count", "10000"]


def tree_of(commit: str, into: Path) -> Path:
    """`commit`'s tbimg_cli/ under `into`, byte-compiled as an install would leave it."""
    archive = subprocess.run(["git", "archive", commit, "tbimg_cli"], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    compileall.compile_dir(into / "tbimg_cli", quiet=1)
    return into


def case(tree: Path | None, logdir: Path) -> dict:
    """`common.alternate`'s case: a fresh `python -c` calling `tbimg_cli.cli.main` as the `tbimg` script does."""
    first = f"sys.path.insert(0, {str(tree)!r}); " if tree else ""
    code = f"import sys; {first}sys.argv = ['tbimg', *{[*COMMAND, '--logdir', str(logdir)]!r}]; "
    code += "from tbimg_cli.cli import main; main()"
    env = {"TBIMG_DATA_DIR": str(DATA_DIR), "PYTHONDONTWRITEBYTECODE": ""}  # from byte-code, as a user's Python runs
    return {"cmd": [sys.executable, "-c", code], "env": env}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", nargs="+", required=True, help="earlier commits to run beside this tree")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tbimg-bench-start-"))
    compileall.compile_dir(REPO / "tbimg_cli", quiet=1)
    trees: dict[str, Path | None] = {commit: tree_of(commit, work / str(i)) for i, commit in enumerate(args.against)}
    trees["this tree"] = None
    cases = {name: case(tree, work / "logs") for name, tree in trees.items()}
    alternate(cases, 1)  # unmeasured: the page cache, as on a second run
    results = alternate(cases, args.runs)
    now = results["this tree"]["median_s"]
    print(f"`tbimg {' '.join(COMMAND)}`, medians of {args.runs} alternating runs")
    for name, result in results.items():
        median = result["median_s"]
        print(f"{name}: {median * 1000:.1f} ms, {median / now:.2f}x this tree's time, {result['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
