"""Start-up, data loading, `single` and `grid` against the tutorial's way (issues 2 and 3).

    python bench/bench_images.py [--runs 7]

Runs tbimg and bench/tutorial_way.py alternately, prints a Markdown table of
medians, ratios and peak RSS, and saves the raw numbers in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DATA_DIR,
    PYTHON,
    QUIET_TF,
    REPO,
    TBIMG,
    alternate,
    keras_home_with_data,
    print_table,
    row,
    run_measured,
    save,
)


def load_times(runs: int) -> dict:
    """Seconds to load each split with tbimg's data layer (files already in the page cache), measured
    in a child process: a child's peak RSS as `wait4` reports it starts from its parent's at the fork,
    so this process stays small for the RSS of the commands measured after it."""
    code = f"""
import json, statistics, time
from tbimg_cli.tutorial import data
result = {{}}
for split in ("test", "train"):
    samples = []
    for _ in range({runs}):
        started = time.perf_counter()
        data.load(split, {str(DATA_DIR)!r})
        samples.append(time.perf_counter() - started)
    result[split] = statistics.median(samples)
print(json.dumps(result))
"""
    return json.loads(run_measured([PYTHON, "-c", code])[2])


def writer_throughput(rounds: int) -> dict:
    """Images per second writing one summary: each round runs both peers on 10,000 images, one
    process each (medians of all runs); then tbimg alone on 30,000 and 60,000, to show it scales."""
    script = [PYTHON, str(REPO / "bench" / "writer_throughput.py")]
    samples = {"tbimg": [], "tf": []}
    for _ in range(rounds):
        for who in samples:
            samples[who] += json.loads(run_measured([*script, who], QUIET_TF)[2])["images_per_s"]
    rates = {who: statistics.median(runs) for who, runs in samples.items()}
    for count in (30_000, 60_000):
        rates[f"tbimg {count}"] = statistics.median(
            json.loads(run_measured([*script, "tbimg", "--count", str(count)])[2])["images_per_s"]
        )
    return rates


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-images-"))
    tutorial_env = {"KERAS_HOME": str(keras_home_with_data()), **QUIET_TF}
    data = ["--data-dir", str(DATA_DIR), "--logdir", str(work / "tbimg")]
    tutorial = [PYTHON, str(REPO / "bench" / "tutorial_way.py")]

    print("help ...", file=sys.stderr)
    help_runs = alternate(
        {
            "help": {"cmd": [*TBIMG, "--help"]},
            "bare typer help": {"cmd": [PYTHON, str(REPO / "bench" / "bare_typer_app.py"), "--help"]},
        },
        args.runs * 2,
    )
    print("load ...", file=sys.stderr)
    loads = load_times(args.runs)
    print("single/grid ...", file=sys.stderr)
    cases = alternate(
        {
            "tbimg single": {"cmd": [*TBIMG, "single", "--index", "0", *data]},
            "tutorial single": {"cmd": [*tutorial, "single", "--logdir", str(work / "tut")], "env": tutorial_env},
            "tbimg grid 25": {"cmd": [*TBIMG, "grid", "--count", "25", *data]},
            "tutorial grid 25": {
                "cmd": [*tutorial, "grid", "--count", "25", "--logdir", str(work / "tut")],
                "env": tutorial_env,
            },
            "tbimg grid 10000": {"cmd": [*TBIMG, "grid", "--count", "10000", "--split", "test", *data]},
        },
        args.runs,
    )
    print("writer throughput ...", file=sys.stderr)
    writer_rates = writer_throughput(args.runs)

    help_s, bare_help_s = help_runs["help"]["median_s"], help_runs["bare typer help"]["median_s"]
    single_s, tut_single_s = cases["tbimg single"]["median_s"], cases["tutorial single"]["median_s"]
    grid_s, tut_grid_s = cases["tbimg grid 25"]["median_s"], cases["tutorial grid 25"]["median_s"]
    big_grid_s = cases["tbimg grid 10000"]["median_s"]
    rss = max(cases[name]["peak_rss_mb"] for name in ("tbimg single", "tbimg grid 25"))
    rows = [
        row("`tbimg --help` median", f"{help_s:.3f} s", "<= 0.25 s", help_s <= 0.25),
        row("bare Typer app `--help` median (bench/bare_typer_app.py)", f"{bare_help_s:.3f} s"),
        row("`--help` / bare Typer app", f"{help_s / bare_help_s:.2f}x", "<= 1.5x", help_s <= 1.5 * bare_help_s),
        row("load test set (10k), in-process median", f"{loads['test']:.3f} s"),
        row("load training set (60k), in-process median", f"{loads['train']:.3f} s"),
        row("`tbimg single --index 0` median", f"{single_s:.3f} s", "<= 0.35 s", single_s <= 0.35),
        row("tutorial single median", f"{tut_single_s:.3f} s"),
        row("single speed-up", f"{tut_single_s / single_s:.1f}x", ">= 12x", tut_single_s / single_s >= 12),
        row("`tbimg grid --count 25` median", f"{grid_s:.3f} s"),
        row("tutorial grid 25 median", f"{tut_grid_s:.3f} s"),
        row("grid 25 speed-up", f"{tut_grid_s / grid_s:.1f}x"),
        row("peak RSS, tbimg single/grid", f"{rss:.0f} MB", "<= 120 MB", rss <= 120),
        row("peak RSS, tutorial single", f"{cases['tutorial single']['peak_rss_mb']:.0f} MB"),
        row(
            "writer, 10,000 images in one summary",
            f"{writer_rates['tbimg']:,.0f} img/s",
            ">= 20,000 img/s",
            writer_rates["tbimg"] >= 20000,
        ),
        row("tf.summary.image, same", f"{writer_rates['tf']:,.0f} img/s"),
        row(
            "writer / tf.summary.image",
            f"{writer_rates['tbimg'] / writer_rates['tf']:.2f}x",
            ">= 1.2x",
            writer_rates["tbimg"] >= 1.2 * writer_rates["tf"],
        ),
        row(
            "writer, 30,000 / 60,000 images in one summary",
            f"{writer_rates['tbimg 30000']:,.0f} / {writer_rates['tbimg 60000']:,.0f} img/s",
            "linear: >= 0.8x the 10,000 rate",
            writer_rates["tbimg 60000"] >= 0.8 * writer_rates["tbimg"],
        ),
        row("`tbimg grid --count 10000` median", f"{big_grid_s:.3f} s", "<= 1.5 s", big_grid_s <= 1.5),
    ]
    print_table(f"bench_images ({args.runs} alternating runs, medians)", rows)
    path = save(
        "bench_images", {"help": help_runs, "load_s": loads, "cases": cases, "writer_images_per_s": writer_rates}
    )
    print(f"\nraw numbers: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
