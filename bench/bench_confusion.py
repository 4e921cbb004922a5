"""`log_confusion_matrix` per call against the way people do it today: scikit-learn's
`ConfusionMatrixDisplay.from_predictions`, then tensorboardX's `add_figure` (issue 18).

    pip install tensorboardX && python bench/bench_confusion.py --runs 5

Two cases: 10 classes, 10,000 examples, with a gallery of mistakes (tbimg's call also writes the table
and per-class scalars); and 100 classes, 10,000 examples. Each round runs each contender in a fresh
process, alternating: a first call (imports, fonts), then `--calls` timed calls, as a training loop
makes them every epoch. Reports medians of the per-call times and the first call's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, alternate, print_table, row, save

CALLER = """
import json, sys, tempfile, time
import numpy as np

way, classes, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
n = 10_000
y_true = rng.integers(0, classes, n)
# New predictions every call, as every epoch brings: each right about 3 times in 4, never the same matrix.
step_scores = [rng.random((n, classes)) + 1.5 * np.eye(classes)[y_true] for _ in range(calls + 1)]
names = [f"class {i}" for i in range(classes)]
images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
logdir = tempfile.mkdtemp()
times = []
started = time.perf_counter()
if way == "tbimg":
    from tbimg_cli import log_confusion_matrix

    def call(step):
        log_confusion_matrix(logdir, y_true, step_scores[step], step=step, class_names=names, images=images)
else:
    from sklearn.metrics import ConfusionMatrixDisplay
    from tensorboardX import SummaryWriter
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    writer = SummaryWriter(logdir)

    def call(step):
        y_pred = step_scores[step].argmax(axis=1)
        display = ConfusionMatrixDisplay.from_predictions(y_true, y_pred, display_labels=names, normalize="true")
        writer.add_figure("Confusion Matrix", display.figure_, step)  # closes the figure
        writer.flush()
for step in range(calls + 1):
    call(step)
    times.append(time.perf_counter() - started)
    started = time.perf_counter()
print(json.dumps({"first": times[0], "calls": times[1:]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    caller = Path(tempfile.mkdtemp(prefix="bench-confusion-")) / "caller.py"
    caller.write_text(CALLER)
    rows, results = [], {}
    for classes in (10, 100):
        print(f"{classes} classes ...", file=sys.stderr)
        cases = alternate(
            {
                way: {"cmd": [PYTHON, str(caller), way, str(classes), str(args.calls)]}
                for way in ("tbimg", "sklearn + tensorboardX")
            },
            args.runs,
        )
        per_call, first = {}, {}
        for way, case in cases.items():
            measured = [json.loads(out) for out in case["stdout"]]
            per_call[way] = statistics.median(t for m in measured for t in m["calls"])
            first[way] = statistics.median(m["first"] for m in measured)
        ratio = per_call["sklearn + tensorboardX"] / per_call["tbimg"]
        rows += [
            row(f"{classes} classes: `log_confusion_matrix` per call", f"{per_call['tbimg'] * 1000:.0f} ms"),
            row(
                f"{classes} classes: sklearn display + add_figure",
                f"{per_call['sklearn + tensorboardX'] * 1000:.0f} ms",
            ),
            row(f"{classes} classes: speed-up per call", f"{ratio:.1f}x", ">= 3x", ratio >= 3),
            row(
                f"{classes} classes: first call (imports included), tbimg / peer",
                f"{first['tbimg']:.2f} s / {first['sklearn + tensorboardX']:.2f} s",
            ),
        ]
        results[str(classes)] = {"per_call_s": per_call, "first_call_s": first}
    print_table(f"bench_confusion ({args.runs} alternating runs of {args.calls} calls, medians)", rows)
    print(f"\nraw numbers: {save('bench_confusion', {'results': results})}")


if __name__ == "__main__":
    main()
