"""Read-back at scale: `tbimg inspect` and the scalar export against EventMultiplexer and tbparse (issue 12).

    pip install tbparse pandas        # the peers, for the benchmark only
    python bench/bench_readback.py [--runs 3] [--scalars 1000000] [--images 10000] [--run-count 4]

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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, REPO, TBIMG, alternate, print_table, row, save

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scalars", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--run-count", type=int, default=RUNS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-readback-"))
    started = time.perf_counter()
    logdir = write_logdir(work / "logs", args.scalars, args.images, args.run_count)
    size_mb = sum(p.stat().st_size for p in logdir.rglob("*") if p.is_file()) / 1e6
    print(f"wrote {size_mb:.0f} MB in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    peers = [PYTHON, str(REPO / "bench" / "readback_peers.py")]
    cases = alternate(
        {
            "tbimg inspect": {"cmd": [*TBIMG, "inspect", str(logdir), "--json"]},
            "tbimg export (scalars to CSV)": {
                "cmd": [
                    *TBIMG,
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
            "EventMultiplexer (all events kept)": {"cmd": [*peers, "multiplexer", str(logdir)]},
            "tbparse.SummaryReader": {"cmd": [*peers, "tbparse", str(logdir)]},
        },
        args.runs,
    )
    inspected = json.loads(cases["tbimg inspect"]["stdout"][0])
    counted = {f"{t['run']}|{t['tag']}": t["steps"]["count"] for t in inspected["tags"] if t["plugin"] == "scalars"}
    ours = read_csvs(work / "csv")
    mux = json.loads(cases["EventMultiplexer (all events kept)"]["stdout"][0])
    tbp = json.loads(cases["tbparse.SummaryReader"]["stdout"][0])
    events = sum(v[0] for v in ours.values())
    images = sum(t["steps"]["count"] for t in inspected["tags"] if t["plugin"] == "images")
    agreement = agree(ours, mux) and agree(ours, tbp) and counted == {k: v[0] for k, v in ours.items()}
    rows = [row("logdir", f"{size_mb:.0f} MB, {events:,} scalar events, {images:,} images, {args.run_count} runs")]
    base = {name: cases[name]["median_s"] for name in cases}
    for name in cases:
        rows.append(row(f"{name} median", f"{base[name]:.2f} s, peak {cases[name]['peak_rss_mb']:.0f} MB"))
    for ours_name in ("tbimg inspect", "tbimg export (scalars to CSV)"):
        for peer in ("EventMultiplexer (all events kept)", "tbparse.SummaryReader"):
            ratio = base[peer] / base[ours_name]
            rows.append(row(f"{ours_name} vs {peer}", f"{ratio:.1f}x faster", ">= 5x", ratio >= 5))
        rows.append(
            row(
                f"{ours_name} peak RSS",
                f"{cases[ours_name]['peak_rss_mb']:.0f} MB",
                "< 150 MB",
                cases[ours_name]["peak_rss_mb"] < 150,
            )
        )
    rows.append(row("values agree (count, sum, last per tag) with both peers", str(agreement), "True", agreement))
    print_table(f"bench_readback ({args.runs} alternating runs, medians)", rows)
    path = save(f"bench_readback_{args.run_count}_runs", {"cases": cases, "events": events, "size_mb": size_mb})
    print(f"\nraw numbers: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
