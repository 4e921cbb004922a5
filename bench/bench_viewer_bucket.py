"""The tbimg tab on a bucket (issue 26): bytes fetched from the store until one step is shown, against
TensorBoard's own loader, which reads every byte of a run to show it.

    pip install -e '.[test]' && python bench/bench_viewer_bucket.py --runs 3

moto's S3-compatible server on 127.0.0.1 (started here) behind a byte-counting TCP proxy (here too), so
that every byte a reader fetches is counted, listing requests and HTTP headers included. Two runs:

- `tbimg`: 1,000 steps x 4 JPEGs of 256x256 (about 140 MB), written straight into the bucket by tbimg's
  `EventWriter` (so in pieces of at most 64 MiB, as tbimg's writers leave them);
- `torch`: PyTorch's `SummaryWriter` (TF 1 `Summary.Image` PNGs, one image per tag, as tensorboardX
  writes them), 250 steps x 4 tags of 256x256, written locally and uploaded as one object.

Measured, alternating, medians of `--runs`:
- the tab: a fresh process builds the tab's index of one run (`ImageIndex`, as the plugin does at its
  first request), lists it (`series`, `steps`) and reads the last step's first image (`image`);
- TensorBoard (`tbimg serve URL`, whose own dashboards use TensorBoard's Python loader on a bucket):
  from start until its image dashboard lists the run's steps.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

from bench_bucket import start_server
from bench_viewer import SAMPLES, SIZE, free_port

BUCKET = "bench"
TAB = """
import json, sys, time
from tbimg_cli.serve.index import ImageIndex

began = time.perf_counter()
index = ImageIndex(sys.argv[1])
index.refresh()
series = index.listing()
steps = index.steps(series[0]["run"], series[0]["tag"])
image = index.sample(series[0]["run"], series[0]["tag"], steps[-1]["step"], 0)
print(json.dumps({"seconds": time.perf_counter() - began, "steps": len(steps), "image": len(image)}))
"""


class CountingProxy:
    """127.0.0.1:port -> the store; counts the bytes the store sends back (what a reader fetched)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.received = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.received = self.connections = 0

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                if counted:
                    with self._lock:
                        self.received += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


def write_runs(endpoint: str) -> dict[str, int]:
    import boto3
    import fsspec.config
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    from tbimg_cli.events.writer import EncodedImage, EventWriter

    os.environ["FSSPEC_S3_ENDPOINT_URL"] = endpoint
    fsspec.config.set_conf_env(fsspec.config.conf)  # fsspec read the environment when it was imported
    rng = np.random.default_rng(0)
    base = [rng.random((SIZE // 8, SIZE // 8, 3)) for _ in range(8)]

    def photo(k: int) -> np.ndarray:
        pixels = np.kron(base[k % len(base)], np.ones((8, 8, 1))) * 200 + rng.random((SIZE, SIZE, 3)) * 55
        return pixels.astype(np.uint8)

    with EventWriter(f"s3://{BUCKET}/tbimg/run0") as writer:
        for step in range(1000):
            images = []
            for sample in range(SAMPLES):
                buffer = io.BytesIO()
                Image.fromarray(photo(step + sample)).save(buffer, "JPEG", quality=90)
                images.append(EncodedImage(buffer.getvalue(), SIZE, SIZE, "jpeg"))
            writer.encoded_images("samples", images, step)
    local = Path(tempfile.mkdtemp(prefix="tbimg-torch-run-"))
    with SummaryWriter(str(local)) as writer:
        for step in range(250):
            for sample in range(SAMPLES):
                writer.add_image(f"samples/{sample}", photo(step + sample), step, dataformats="HWC")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for path in local.iterdir():
        s3.upload_file(str(path), BUCKET, f"torch/run0/{path.name}")
    sizes = {}
    for prefix in ("tbimg", "torch"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
        sizes[prefix] = sum(item["Size"] for page in pages for item in page.get("Contents", []))
    return sizes


def measure_tab(proxy: CountingProxy, prefix: str) -> dict[str, float]:
    proxy.reset()
    env = {**os.environ, "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    proc = subprocess.run(
        [sys.executable, "-c", TAB, f"s3://{BUCKET}/{prefix}"], env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(proc.stdout)
    return {
        "bytes": proxy.received,
        "seconds": found["seconds"],
        "steps": found["steps"],
        "connections": proxy.connections,
    }


def measure_tensorboard(proxy: CountingProxy, prefix: str, steps: int) -> dict[str, float]:
    proxy.reset()
    env = {**os.environ, "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    port = free_port()
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tbimg_cli", "serve", f"s3://{BUCKET}/{prefix}", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tags_url = f"http://127.0.0.1:{port}/data/plugin/images/tags"
        while time.monotonic() - began < 600:
            try:
                with urllib.request.urlopen(tags_url, timeout=10) as response:
                    tags = json.loads(response.read())
                if tags.get("run0"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        # TensorBoard lists a run once its reload has read the run's files to the end
        return {"bytes": proxy.received, "seconds": time.monotonic() - began, "steps": steps}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-tensorboard", action="store_true", help="the tab only (TensorBoard reads all: slow)")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    server, endpoint = start_server()
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        made = time.monotonic()
        sizes = write_runs(endpoint)
        print(
            f"runs written in {time.monotonic() - made:.0f} s: "
            + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items())
        )
        proxy = CountingProxy(int(endpoint.rsplit(":", 1)[1]))
        cases = {
            "tab, tbimg's run": lambda: measure_tab(proxy, "tbimg"),
            "tab, SummaryWriter's run": lambda: measure_tab(proxy, "torch"),
            "TensorBoard, tbimg's run": lambda: measure_tensorboard(proxy, "tbimg", 1000),
        }
        if args.skip_tensorboard:
            cases.pop("TensorBoard, tbimg's run")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, case in cases.items():
                results[name].append(case())
        print(f"medians of {args.runs} alternating runs, {os.cpu_count()} cores")
        for name, rows in results.items():
            size = sizes["torch" if "SummaryWriter" in name else "tbimg"]
            fetched = statistics.median(r["bytes"] for r in rows)
            seconds = statistics.median(r["seconds"] for r in rows)
            print(f"{name}: {fetched / 1e6:.2f} MB fetched ({100 * fetched / size:.2f}% of the run), {seconds:.2f} s")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
