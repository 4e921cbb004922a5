"""Read-back at scale: `tbimg inspect` and the scalar export against TensorBoard's Rust loader,
EventMultiplexer and tbparse (issues 12 and 29).

    pip install tbparse pandas        # the peers, for the benchmark only
    python bench/bench_readback.py [--runs 3] [--scalars 1000000] [--images 10000] [--run-count 4]
        [--scale 10] [--peers rust,rust-all,multiplexer,tbparse] [--venv DIR]

tbimg and TensorBoard run from a venv without TensorFlow (`--venv`; by default
one made once under ~/.cache/tbimg-bench with `pip install -e .`, which brings
TensorBoard and its Rust data server as tbimg's dependency), as a user who
reads logs runs them. The Rust loader's time is from TensorBoard's start until
every run's last scalar is served over HTTP (`rust`), or every scalar (`rust-all`,
`--samples_per_plugin scalars=<steps>`, what an export of them all is compared with).
`--scale 10` makes the log ten times larger (each run ten times longer).

Two shapes (issue 18): `--run-count 4`, four runs of about 14 MB each, and
`--run-count 1`, one run of a million events in one file; tbimg reads both
on every core (the second in pieces of its one file).

Writes a logdir of its own (4 runs by default; TF 2 tensor scalars, each carrying its
metadata as `tf.summary.scalar` writes them; 28x28 PNG image summaries), then
runs each contender alternately in a fresh process: `tbimg inspect`, `tbimg
export` of the scalars to CSV, TensorBoard's `EventMultiplexer` keeping every
event, and `tbparse.SummaryReader`. Reports medians, ratios, peak RSS, and
checks that all of them read the same count, sum and last value per tag.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, REPO, alternate, print_table, row, save

RUNS = 4
SCALAR_TAGS = ("loss", "accuracy")


def write_logdir(root: Path, scalars: int, images: int, runs: int = RUNS) -> Path:
    """`scalars` scalar events and `images` image summaries over `runs` runs, framed directly (fast to write)."""
    import numpy as np
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.plugins.image import metadata as image_metadata
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    from tbimg_cli.events.png import encode_pngs
    from tbimg_cli.events.records import frame

    scalar_meta = scalar_metadata.create_summary_metadata(None, "")
    image_meta = image_metadata.create_summary_metadata(None, "")
    pngs = encode_pngs((np.random.default_rng(0).random((64, 28, 28, 1)) * 255).astype(np.uint8))
    steps = scalars // (runs * len(SCALAR_TAGS))
    image_every = max(1, steps * runs // images)
    for run in range(runs):
        folder = root / f"run-{run}"
        folder.mkdir(parents=True)
        with open(folder / f"events.out.tfevents.1700000000.bench.{run}.0.v2", "wb") as out:
            out.write(frame(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString()))
            for step in range(steps):
                values = []
                for i, tag in enumerate(SCALAR_TAGS):
                    number = math.sin(step / 1000 + run + i)
                    tensor = tensor_pb2.TensorProto(
                        dtype=1,
                        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                        tensor_content=np.float32(number).tobytes(),
                    )
                    values.append(summary_pb2.Summary.Value(tag=tag, metadata=scalar_meta, tensor=tensor))
                if step % image_every == 0:
                    tensor = tensor_pb2.TensorProto(
                        dtype=7,
                        tensor_shape=tensor_shape_pb2.TensorShapeProto(
                            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]
                        ),
                        string_val=[b"28", b"28", pngs[step % len(pngs)]],
                    )
                    values.append(summary_pb2.Summary.Value(tag="samples", metadata=image_meta, tensor=tensor))
                for value in values:  # one value per event, as tf.summary writes them
                    event = event_pb2.Event(
                        wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(value=[value])
                    )
                    out.write(frame(event.SerializeToString()))
    return root


def read_csvs(out: Path) -> dict:
    found = {}
    for path in sorted(out.rglob("scalars.csv")):
        run = path.parent.relative_to(out).as_posix()
        with open(path, newline="") as f:
            for record in csv.DictReader(f):
                entry = found.setdefault(f"{run}|{record['tag']}", [0, 0.0, 0.0])
                entry[0] += 1
                entry[1] += float(record["value"])
                entry[2] = float(record["value"])
    return found


def agree(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0]
        and math.isclose(a[k][1], b[k][1], rel_tol=1e-6, abs_tol=1e-3)
        and math.isclose(a[k][2], b[k][2], abs_tol=1e-6)
        for k in a
    )


def venv_without_tensorflow(folder: Path | None) -> Path:
    """A venv holding tbimg (editable) and TensorBoard but no TensorFlow; made on first use."""
    folder = folder or Path.home() / ".cache" / "tbimg-bench" / "venv-no-tensorflow"
    if not (folder / "bin" / "tensorboard").exists():
        subprocess.run([PYTHON, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q", "-e", str(REPO)], check=True)
    found = subprocess.run([str(folder / "bin" / "python"), "-c", "import tensorflow"], capture_output=True)
    if found.returncode == 0:
        raise SystemExit(f"{folder} has TensorFlow: give --venv a venv without it")
    return folder


RUST = "TensorBoard's Rust loader, last scalars served"
RUST_ALL = "TensorBoard's Rust loader, every scalar served"
MULTIPLEXER, TBPARSE = "EventMultiplexer (all events kept)", "tbparse.SummaryReader"
INSPECT, EXPORT = "tbimg inspect", "tbimg export (scalars to CSV)"
TARGETS = {  # (ours, peer): at least this many times faster, issue 29's (and issue 12's) bars
    (INSPECT, RUST): 2.0,
    (EXPORT, RUST_ALL): 3.0,
    (EXPORT, TBPARSE): 5.0,
    (INSPECT, TBPARSE): 5.0,
    (INSPECT, MULTIPLEXER): 5.0,
    (EXPORT, MULTIPLEXER): 5.0,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scalars", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--run-count", type=int, default=RUNS)
    parser.add_argument("--scale", type=int, default=1, help="the log this many times larger")
    parser.add_argument("--peers", default="rust,rust-all,multiplexer,tbparse")
    parser.add_argument("--venv", type=Path, help="a venv with tbimg and TensorBoard, without TensorFlow")
    args = parser.parse_args()
    venv = venv_without_tensorflow(args.venv)
    work = Path(tempfile.mkdtemp(prefix="bench-readback-"))
    started = time.perf_counter()
    logdir = write_logdir(work / "logs", args.scalars * args.scale, args.images * args.scale, args.run_count)
    size_mb = sum(p.stat().st_size for p in logdir.rglob("*") if p.is_file()) / 1e6
    print(f"wrote {size_mb:.0f} MB in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    peers = [PYTHON, str(REPO / "bench" / "readback_peers.py")]
    tbimg = [str(venv / "bin" / "tbimg")]
    last_step = args.scalars * args.scale // (args.run_count * len(SCALAR_TAGS)) - 1
    served = [",".join(f"run-{k}" for k in range(args.run_count)), ",".join(SCALAR_TAGS), str(last_step)]
    tensorboard = str(venv / "bin" / "tensorboard")
    wanted = set(args.peers.split(","))
    peer_cases = {
        RUST: {"cmd": [*peers, "rust", str(logdir), tensorboard, *served], "reports_seconds": True},
        RUST_ALL: {"cmd": [*peers, "rust-all", str(logdir), tensorboard, *served], "reports_seconds": True},
        MULTIPLEXER: {"cmd": [*peers, "multiplexer", str(logdir)]},
        TBPARSE: {"cmd": [*peers, "tbparse", str(logdir)]},
    }
    names = {"rust": RUST, "rust-all": RUST_ALL, "multiplexer": MULTIPLEXER, "tbparse": TBPARSE}
    cases = alternate(
        {
            INSPECT: {"cmd": [*tbimg, "inspect", str(logdir), "--json"]},
            EXPORT: {
                "cmd": [
                    *tbimg,
                    "export",
                    str(logdir),
                    "--out",
                    str(work / "csv"),
                    "--tag",
                    "^(loss|accuracy)$",
                    "--force",
                    "--json",
                ]
            },
            **{names[peer]: peer_cases[names[peer]] for peer in names if peer in wanted},
        },
        args.runs,
    )
    inspected = json.loads(cases[INSPECT]["stdout"][0])
    counted = {f"{t['run']}|{t['tag']}": t["steps"]["count"] for t in inspected["tags"] if t["plugin"] == "scalars"}
    last = {f"{t['run']}|{t['tag']}": t["last_value"] for t in inspected["tags"] if t["plugin"] == "scalars"}
    ours = read_csvs(work / "csv")
    agreement = counted == {k: v[0] for k, v in ours.items()}
    for name in (MULTIPLEXER, TBPARSE):
        if name in cases:
            agreement = agreement and agree(ours, json.loads(cases[name]["stdout"][0]))
    for name in (RUST, RUST_ALL):
        if name in cases:  # the Rust loader keeps 1,000 points a tag unless told: compare the last one
            found = json.loads(cases[name]["stdout"][0])["found"]
            agreement = agreement and all(math.isclose(found[k][2], last[k], abs_tol=1e-6) for k in last)
    events = sum(v[0] for v in ours.values())
    images = sum(t["steps"]["count"] for t in inspected["tags"] if t["plugin"] == "images")
    rows = [row("logdir", f"{size_mb:.0f} MB, {events:,} scalar events, {images:,} images, {args.run_count} runs")]
    base = {name: cases[name]["median_s"] for name in cases}
    for name in cases:
        rows.append(row(f"{name} median", f"{base[name]:.2f} s, peak {cases[name]['peak_rss_mb']:.0f} MB"))
    for (ours_name, peer), target in TARGETS.items():
        if (ours_name, peer) == (INSPECT, RUST) and args.scale >= 10:
            target = 3.0  # on a log ten times larger, where starting costs less of the whole
        if peer in cases:
            ratio = base[peer] / base[ours_name]
            rows.append(row(f"{ours_name} vs {peer}", f"{ratio:.2f}x faster", f">= {target:g}x", ratio >= target))
    for ours_name in (INSPECT, EXPORT):
        rss = cases[ours_name]["peak_rss_mb"]
        rows.append(row(f"{ours_name} peak RSS", f"{rss:.0f} MB", "< 150 MB", rss < 150))
    rows.append(row("values agree (count, sum, last per tag) with every peer", str(agreement), "True", agreement))
    print_table(f"bench_readback ({args.runs} alternating runs, medians, scale {args.scale})", rows)
    name = f"bench_readback_{args.run_count}_runs" + (f"_x{args.scale}" if args.scale != 1 else "")
    path = save(name, {"cases": cases, "events": events, "size_mb": size_mb})
    print(f"\nraw numbers: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
