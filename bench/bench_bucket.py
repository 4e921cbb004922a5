"""Logs straight into a bucket (issue 20): what 1,000 flushes cost, tbimg against tensorboardX's S3 writer.

    pip install tensorboardX && python bench/bench_bucket.py --runs 3

Both write the same thing into moto's S3-compatible server on 127.0.0.1 (started here): at each step one
scalar and one 64x64 RGB image, then a flush, 1,000 times, as a training loop flushing every step (or every
few seconds over a long run) does. tbimg's `EventWriter` on an `s3://` URL uploads the step's new records as
a new object (`storage.flush_now` waits for it); tensorboardX's `SummaryWriter` on `s3://` (with
`S3_ENDPOINT`) uploads its whole event file again at every flush. Recorded per flush: the bytes uploaded
and the seconds the flush took. Each contender runs in a fresh process, alternating, `--runs` rounds;
per-flush figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, print_table, row, run_measured, save

WRITER = """
import json, os, sys, time
import numpy as np

way, url, flushes = sys.argv[1], sys.argv[2], int(sys.argv[3])
image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
sizes, seconds = [], []
if way == "tbimg":
    from tbimg_cli import EventWriter
    from tbimg_cli.events import storage
    writer = EventWriter(url)
    def flush():
        writer.flush()
        before = storage.uploaded_bytes(url)
        assert storage.flush_now(url)
        return storage.uploaded_bytes(url) - before
    log = lambda step: (writer.scalar("loss", 1 / (step + 1), step), writer.image("sample", image, step))
else:
    import boto3
    from tensorboardX import SummaryWriter
    writer = SummaryWriter(url, flush_secs=10**6)
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
    bucket, prefix = url[5:].split("/", 1)
    def flush():
        writer.flush()
        (item,) = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
        return item["Size"]  # the whole file, uploaded again
    def log(step):
        writer.add_scalar("loss", 1 / (step + 1), step)
        writer.add_image("sample", image, step, dataformats="HWC")
for step in range(flushes):
    log(step)
    started = time.perf_counter()
    sizes.append(flush())
    seconds.append(time.perf_counter() - started)
writer.close()
print(json.dumps({"bytes": sizes, "seconds": seconds}))
"""


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}"


def final_size(endpoint: str, bucket: str, prefix: str) -> int:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(item["Size"] for page in pages for item in page.get("Contents", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flushes", type=int, default=1000)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    server, endpoint = start_server()
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        env = {"FSSPEC_S3_ENDPOINT_URL": endpoint, "S3_ENDPOINT": endpoint}
        results: dict[str, list[dict]] = {"tbimg": [], "tensorboardx": []}
        for round_no in range(args.runs):  # alternating, each run in a fresh process and a fresh folder
            for way, runs in results.items():
                prefix = f"{way}-{round_no}"
                _, _, out = run_measured([PYTHON, "-c", WRITER, way, f"s3://bench/{prefix}", str(args.flushes)], env)
                runs.append({**json.loads(out), "final": final_size(endpoint, "bench", f"{prefix}/")})
            print(f"  round {round_no + 1}/{args.runs} done", file=sys.stderr)
    finally:
        server.terminate()

    def per_flush(way: str, key: str) -> list[float]:
        return [statistics.median(run[key][i] for run in results[way]) for i in range(args.flushes)]

    marks = [0, *range(99, args.flushes, 100)]
    print("\n### Per flush: bytes uploaded and seconds, against flush number (medians over rounds)\n")
    print("| flush | tbimg bytes | tbimg ms | tensorboardX bytes | tensorboardX ms |")
    print("|---|---|---|---|---|")
    curves = {way: {"bytes": per_flush(way, "bytes"), "seconds": per_flush(way, "seconds")} for way in results}
    for i in marks:
        print(
            f"| {i + 1} | {curves['tbimg']['bytes'][i]:,.0f} | {curves['tbimg']['seconds'][i] * 1e3:.1f} | "
            f"{curves['tensorboardx']['bytes'][i]:,.0f} | {curves['tensorboardx']['seconds'][i] * 1e3:.1f} |"
        )
    summary = {}
    for way in results:
        uploaded = statistics.median(sum(run["bytes"]) for run in results[way])
        final = statistics.median(run["final"] for run in results[way])
        first = statistics.median(curves[way]["seconds"][:50])
        last = statistics.median(curves[way]["seconds"][-50:])
        summary[way] = {"uploaded": uploaded, "final": final, "first_s": first, "last_s": last}
    ours, theirs = summary["tbimg"], summary["tensorboardx"]
    rows = [
        row(
            "tbimg: bytes uploaded / final log",
            f"{ours['uploaded']:,.0f} / {ours['final']:,.0f} = {ours['uploaded'] / ours['final']:.3f}",
            "<= 1.05",
            ours["uploaded"] / ours["final"] <= 1.05,
        ),
        row(
            "tbimg: flush time, last 50 / first 50",
            f"{ours['last_s'] * 1e3:.1f} / {ours['first_s'] * 1e3:.1f} ms = {ours['last_s'] / ours['first_s']:.2f}",
            "about 1",
            ours["last_s"] / ours["first_s"] < 1.5,
        ),
        row(
            "tensorboardX: bytes uploaded / final log",
            f"{theirs['uploaded']:,.0f} / {theirs['final']:,.0f} = {theirs['uploaded'] / theirs['final']:.0f}",
        ),
        row(
            "tensorboardX: flush time, last 50 / first 50",
            f"{theirs['last_s'] * 1e3:.1f} / "
            f"{theirs['first_s'] * 1e3:.1f} ms = {theirs['last_s'] / theirs['first_s']:.1f}",
        ),
        row("bytes uploaded, tensorboardX / tbimg", f"{theirs['uploaded'] / ours['uploaded']:.0f}x"),
    ]
    print_table(f"{args.flushes} flushes into a bucket (issue 20)", rows)
    save("bench_bucket", {"runs": args.runs, "flushes": args.flushes, "summary": summary, "curves": curves})


if __name__ == "__main__":
    main()
