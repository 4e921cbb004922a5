"""`train-cm` on a few thousand images: what it logs, repeatability, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tbimg_cli.events import records
from tbimg_cli.tutorial.data import CLASS_NAMES

from .helpers import event_files, load_run, wait_until

pytestmark = pytest.mark.slow
QUICK = ["--limit-train", "2000", "--epochs", "2"]


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """One quick training run, shared by the read-back tests below."""
    from typer.testing import CliRunner

    from tbimg_cli.cli import app

    logdir = tmp_path_factory.mktemp("train")
    result = CliRunner().invoke(
        app, ["train-cm", *QUICK, "--seed", "7", "--data-dir", str(data_dir), "--logdir", str(logdir), "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _steps(accumulator, tag):
    return [event.step for event in accumulator.Tensors(tag)]


def _values(accumulator, tag):
    from tensorboard.util import tensor_util

    return [float(tensor_util.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]


def test_layout_is_one_run_directory_with_three_subruns(trained):
    run_dir = Path(trained["run_dir"])
    assert run_dir.parent.name == "image"
    assert sorted(p.name for p in run_dir.iterdir()) == ["cm", "train", "validation"]


def test_train_and_validation_scalars_for_every_epoch(trained):
    run_dir = Path(trained["run_dir"])
    for sub in ("train", "validation"):
        accumulator = load_run(run_dir / sub)
        for tag in ("epoch_loss", "epoch_accuracy"):
            assert _steps(accumulator, tag) == [0, 1], (sub, tag)
    validation_accuracy = _values(load_run(run_dir / "validation"), "epoch_accuracy")
    assert validation_accuracy[-1] == pytest.approx(trained["test_accuracy"], abs=1e-6)


def test_confusion_matrix_and_gallery_every_epoch(trained):
    from tbimg_cli.events.png import png_size

    accumulator = load_run(Path(trained["run_dir"]) / "cm")
    for tag in ("Confusion Matrix", "Misclassified"):
        events = accumulator.Tensors(tag)
        assert [e.step for e in events] == [0, 1]
        for event in events:
            width, height, png = event.tensor_proto.string_val
            assert png_size(png) == (int(width), int(height))
        assert accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "images"


def test_per_class_accuracy_scalars_agree_with_test_accuracy(trained, test_split):
    accumulator = load_run(Path(trained["run_dir"]) / "cm")
    finals = []
    for name in CLASS_NAMES:
        tag = f"per_class_accuracy/{name}"
        assert _steps(accumulator, tag) == [0, 1]
        values = _values(accumulator, tag)
        assert all(0.0 <= v <= 1.0 for v in values)
        finals.append(values[-1])
    # Weighted by how many test images each class has, per-class accuracies make the accuracy.
    per_class = np.bincount(test_split[1], minlength=len(CLASS_NAMES))
    assert np.average(finals, weights=per_class) == pytest.approx(trained["test_accuracy"], abs=1e-4)


def test_result_lists_every_tag_written_and_numbers_epochs_one_way(trained):
    run_dir = Path(trained["run_dir"])
    written = set()
    for sub in ("train", "validation", "cm"):
        tags = load_run(run_dir / sub).Tags()
        written |= set(tags["tensors"]) | set(tags["scalars"])
    assert set(trained["tags"]) == written and len(written) >= 14
    assert {"epoch_loss", "Confusion Matrix", "Misclassified", "per_class_accuracy/Bag"} <= written
    assert [(e["epoch"], e["step"]) for e in trained["epochs"]] == [(1, 0), (2, 1)]


def test_batch_bar_never_passes_the_epoch():
    from tbimg_cli.cli.output import TrainingProgress

    progress = TrainingProgress(enabled=False)
    progress.training_started(epochs=1, steps_per_epoch=1875)
    progress.epoch_started(0)
    progress.batch_done(1919, {"loss": 0.5})  # Keras reports the last batch of a 128-batch call
    batches = progress._progress.tasks[1]
    assert batches.completed == 1875 == batches.total
    progress.training_ended()


def test_learns_something(trained):
    assert trained["test_accuracy"] > 0.6
    assert len(trained["epochs"]) == 2 and trained["epochs"][1]["loss"] < trained["epochs"][0]["loss"]


def test_seed_makes_runs_repeatable(data_dir, tmp_path, trained):
    from typer.testing import CliRunner

    from tbimg_cli.cli import app

    result = CliRunner().invoke(
        app, ["train-cm", *QUICK, "--seed", "7", "--data-dir", str(data_dir), "--logdir", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["test_accuracy"] == trained["test_accuracy"]
    assert [e["loss"] for e in again["epochs"]] == [e["loss"] for e in trained["epochs"]]


def test_bad_data_fails_before_tensorflow_is_imported(tmp_path, cli):
    result = cli("train-cm", "--data-dir", tmp_path / "missing")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    assert not Path("logs").exists()


def _train_cm_process(data_dir, logdir, run_name: str, *options: str, env: dict | None = None) -> subprocess.Popen:
    """`tbimg train-cm` in its own process, its output piped, to be interrupted."""
    command = [sys.executable, "-m", "tbimg_cli", "train-cm", *options, "--data-dir", str(data_dir)]
    return subprocess.Popen(
        [*command, "--logdir", str(logdir), "--run-name", run_name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_ctrl_c_leaves_readable_event_files_and_exit_130(data_dir, tmp_path):
    options = ("--limit-train", "3000", "--epochs", "200")
    proc = _train_cm_process(data_dir, tmp_path, "stopped", *options, env={"TERM": "dumb"})
    cm_dir = tmp_path / "image" / "stopped" / "cm"
    wait_until(
        lambda: event_files(cm_dir) and event_files(cm_dir)[0].stat().st_size > 20000,
        what="the first epoch's matrix on disk",
    )
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "━" not in err and "0:00:" not in err  # no progress bars when stderr is not a terminal
    assert "stopped" in out
    for sub in ("train", "validation", "cm"):
        for path in event_files(tmp_path / "image" / "stopped" / sub):
            _, problem = records.read_records(path)
            assert problem is None, (path, problem)
    steps = [e.step for e in load_run(cm_dir).Tensors("Confusion Matrix")]
    assert steps and steps == list(range(len(steps))) and len(steps) < 200


def test_ctrl_c_before_the_first_epoch_ends_keeps_nothing(data_dir, tmp_path):
    proc = _train_cm_process(data_dir, tmp_path, "early", "--batch-size", "1", "--epochs", "3")
    train_dir = tmp_path / "image" / "early" / "train"
    wait_until(lambda: event_files(train_dir), interval=0.05, what="Keras's writer, so training has begun")
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "before the first epoch" in err and "Wrote" not in out
    assert not (tmp_path / "image" / "early").exists()


def test_full_data_reaches_the_tutorials_accuracy(cli, full_data_dir):
    out = cli.json("train-cm", "--epochs", "1", "--seed", "0", "--data-dir", full_data_dir)
    assert out["test_accuracy"] > 0.8  # the tutorial's model after one epoch on all 60,000 images


def test_modules_hidden_from_keras_fail_to_import_and_come_back_afterwards(tmp_path, monkeypatch):
    from tbimg_cli.shortcuts import _hidden

    (tmp_path / "tbimg_optional_extra.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    already_loaded = sys.modules["json"]
    with _hidden(["tbimg_optional_extra", "json"]):
        with pytest.raises(ImportError):
            import tbimg_optional_extra
        import json  # already imported: never hidden

        assert json is already_loaded
    import tbimg_optional_extra

    assert tbimg_optional_extra.VALUE == 1
