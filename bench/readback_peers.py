"""The tools people use today to read TensorBoard logs, as the read-back benchmark runs them.

    python bench/readback_peers.py multiplexer|tbparse LOGDIR

Loads every scalar event (TF 2 tensor form or simple_value) the way each
tool's users do, then prints one JSON object with, per (run, tag), the count,
sum and last value of the scalar events: what `bench_readback.py` compares
across tools to check that they agree.
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


if __name__ == "__main__":
    tool, logdir = sys.argv[1], sys.argv[2]
    print(json.dumps({"multiplexer": multiplexer, "tbparse": tbparse}[tool](logdir)))
