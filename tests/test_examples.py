"""The examples in docs/examples run as a user would run them, on the test subset, and read back
with TensorBoard's reader."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .helpers import REPO, load_run

EXAMPLES = REPO / "docs" / "examples"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_keras_cnn_example(tmp_path, data_dir):
    _run("keras_cnn.py", "--data-dir", str(data_dir), "--logdir", str(tmp_path), "--epochs", "2")
    cm = load_run(tmp_path / "cm")
    tags = set(cm.Tags()["tensors"])
    assert {"Confusion Matrix", "Confusion Matrix (table)", "Misclassified", "per_class_accuracy/Sneaker"} <= tags
    assert [e.step for e in cm.Tensors("Confusion Matrix")] == [0, 1]
    table = cm.Tensors("Confusion Matrix (table)")[-1].tensor_proto.string_val[0].decode()
    assert "| true \\ predicted | T-shirt/top | Trouser | Sneaker | total |" in table
    assert "epoch_loss" in load_run(tmp_path / "train").Tags()["tensors"]


def test_sklearn_example(tmp_path, data_dir):
    proc = _run("sklearn_classifier.py", "--data-dir", str(data_dir), "--logdir", str(tmp_path), "--passes", "2")
    assert "pass 2: accuracy" in proc.stdout
    cm = load_run(tmp_path / "cm")
    assert [e.step for e in cm.Tensors("Confusion Matrix")] == [0, 1]
    assert (
        len(cm.Tags()["tensors"]) == 3 + 20 + 4
    )  # matrix, table, gallery, 10 accuracies and precisions, the explorer's 4


def test_numpy_training_loop_example(tmp_path, data_dir):
    proc = _run("numpy_training_loop.py", "--data-dir", str(data_dir), "--logdir", str(tmp_path), "--epochs", "3")
    accuracies = [float(line.rsplit(" ", 1)[1]) for line in proc.stdout.splitlines() if "test accuracy" in line]
    assert len(accuracies) == 3 and accuracies[-1] > 0.5  # it learns (chance is 0.1)
    run = load_run(tmp_path)
    assert set(run.Tags()["tensors"]) == {"weights", "hardest", "confidence"}
    for tag, samples in (("weights", 10), ("hardest", 16), ("confidence", 1)):
        assert [event.step for event in run.Tensors(tag)] == [0, 1, 2]
        assert len(run.Tensors(tag)[-1].tensor_proto.string_val) == samples + 2
    assert run.Tensors("weights")[0].tensor_proto.string_val[:2] == [b"28", b"28"]


def test_lightning_example_is_the_readmes_and_logs_one_run(tmp_path, data_dir):
    pytest.importorskip("pytorch_lightning")
    code = (EXAMPLES / "lightning_fashion_mnist.py").read_text()
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## PyTorch Lightning") :]
    shown = section[section.index("```python\n") + len("```python\n") :]
    assert shown[: shown.index("```")] == code[code.index("import os") :]  # README shows the file that runs here
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "lightning_fashion_mnist.py")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "TBIMG_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "logs" / "fashion").iterdir()  # one TensorBoard run for everything
    run = load_run(run_dir)
    tags = set(run.Tags()["tensors"])
    assert {"validation inputs", "first layer", "Confusion Matrix", "val_loss"} <= tags | set(run.Tags()["scalars"])
    val_steps = [event.step for event in run.Tensors("Confusion Matrix")]
    assert len(val_steps) == 2 and [event.step for event in run.Tensors("validation inputs")] == val_steps
    width, height, *pngs = run.Tensors("validation inputs")[-1].tensor_proto.string_val  # as README reads them
    assert (width, height, len(pngs)) == (b"28", b"28", 16)
    first_layer = run.Tensors("first layer")
    assert [event.step for event in first_layer] == [0]  # every 50 steps: the subset gives 2 epochs x 16
    assert len(first_layer[0].tensor_proto.string_val) == 2 + 32
