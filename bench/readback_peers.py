"""The tools people use today to read TensorBoard logs, as the read-back benchmark runs them.

    python bench/readback_peers.py multiplexer|tbparse LOGDIR
    python bench/readback_peers.py rust|rust-all LOGDIR TENSORBOARD RUNS TAGS LAST_STEP

Loads every scalar event (TF 2 tensor form or simple_value) the way each
tool's users do, then prints one JSON object with, per (run, tag), the count,
sum and last value of the scalar events: what `bench_readback.py` compares
across tools to check that they agree.

`rust` starts TENSORBOARD (the `tensorboard` of a venv without TensorFlow: its
Rust data server, `--load_fast=true`) on the logdir and asks, over HTTP, for
each run's scalars until every run's last step of every tag is served; it
prints the seconds from TensorBoard's start to then (the server's shutdown is
not counted) and, per (run, tag), the last step and value. `rust-all` keeps
every scalar (`--samples_per_plugin scalars=N`, N the steps) and waits until
all of them are served: what an export of every scalar is compared with.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def multiplexer(logdir: str) -> dict:
    """TensorBoard's EventMultiplexer, keeping every event (size guidance 0 = keep all)."""
    from tensorboard.backend.event_processing import event_accumulator, plugin_event_multiplexer
    from tensorboard.util import tensor_util

    keep_all = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0}
    mux = plugin_event_multiplexer.EventMultiplexer(size_guidance=keep_all)
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    found = {}
    for run, tags in mux.Runs().items():
        for tag in tags.get("tensors", []):
            if mux.SummaryMetadata(run, tag).plugin_data.plugin_name != "scalars":
                continue
            values = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in mux.Tensors(run, tag)]
            found[f"{run}|{tag}"] = values
        for tag in tags.get("scalars", []):
            found[f"{run}|{tag}"] = [e.value for e in mux.Scalars(run, tag)]
    return {key: [len(v), sum(v), v[-1]] for key, v in found.items()}


def tbparse(logdir: str) -> dict:
    """tbparse, which gives TF 1 scalars as `.scalars` and TF 2's tensor-form scalars as `.tensors`."""
    import numbers

    import pandas as pd
    from tbparse import SummaryReader

    reader = SummaryReader(logdir, pivot=False, extra_columns={"dir_name"})
    frame = pd.concat([reader.scalars, reader.tensors])
    frame = frame[frame["value"].map(lambda v: isinstance(v, numbers.Number))]  # not images' strings
    found = {}
    for (run, tag), group in frame.groupby(["dir_name", "tag"], sort=False):
        values = group["value"].astype(float).tolist()
        found[f"{run or '.'}|{tag}"] = [len(values), sum(values), values[-1]]
    return found


def rust(logdir: str, tensorboard: str, runs: str, tags: str, last_step: str, *, keep_all: bool = False) -> dict:
    """Seconds until TensorBoard's Rust loader serves every run's last scalar (all of them with `keep_all`)."""
    import socket
    import subprocess
    import time
    import urllib.parse
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wanted = {(run, tag) for run in runs.split(",") for tag in tags.split(",")}
    last = int(last_step)
    started = time.perf_counter()
    cmd = [tensorboard, "--logdir", logdir, "--load_fast=true", "--host", "127.0.0.1", "--port", str(port)]
    if keep_all:  # not scalars=0 ("keep all"): the Rust data server 0.7.2 then serves no points at all
        cmd += ["--samples_per_plugin", f"scalars={last + 1}"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found: dict[str, list] = {}
    try:
        while len(found) < len(wanted):
            for run, tag in sorted(wanted):
                if f"{run}|{tag}" in found:
                    continue
                query = urllib.parse.urlencode({"run": run, "tag": tag})
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}"
                    ) as reply:
                        points = json.load(reply)
                except OSError:
                    continue  # not listening yet, or that run not loaded yet
                if points and points[-1][1] == last and (not keep_all or len(points) == last + 1):
                    found[f"{run}|{tag}"] = [len(points), points[-1][1], points[-1][2]]
            time.sleep(0.005)
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    return {"seconds": seconds, "found": found}


if __name__ == "__main__":
    tool, logdir = sys.argv[1], sys.argv[2]
    if tool in ("rust", "rust-all"):
        print(json.dumps(rust(logdir, *sys.argv[3:7], keep_all=tool == "rust-all")))
    else:
        print(json.dumps({"multiplexer": multiplexer, "tbparse": tbparse}[tool](logdir)))
