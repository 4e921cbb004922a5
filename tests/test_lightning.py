"""Lightning callbacks (issue 28): a tiny LightningModule trained for 2 epochs on CPU with real tensors."""

from __future__ import annotations

import numpy as np
import pytest

pl = pytest.importorskip("pytorch_lightning")
torch = pytest.importorskip("torch")

from tbimg_cli.lightning import ConfusionMatrixCallback, ImageCallback  # noqa: E402

from .helpers import decode_png, load_run  # noqa: E402
from .lightning_ddp_job import CLASSES, VALIDATION_SIZE, Tiny, dataset  # noqa: E402


def fit(root, module, callbacks, epochs=2, workers=0):
    def loader(data, batch_size):
        return torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=workers)

    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=pl.loggers.TensorBoardLogger(str(root), name="tiny"),
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, loader(dataset(0), batch_size=16), loader(dataset(1, 48), batch_size=16))
    return trainer


def steps(run, tag):
    return [event.step for event in load_run(run).Tensors(tag)]


def test_images_and_scalars_share_steps_in_one_run_without_a_sanity_check_step(tmp_path):
    images = ImageCallback(lambda trainer, module, batch, outputs: {"inputs": batch[0], "scaled": outputs["x"] * 0.5})
    matrix = ConfusionMatrixCallback(["low", "mid", "high"], images=lambda batch: batch[0])
    trainer = fit(tmp_path, Tiny(), [images, matrix])
    (run,) = (tmp_path / "tiny").iterdir()  # one TensorBoard run: version_0
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == []  # no second run folder (no version_0/cm)
    scalars = load_run(run)
    val_steps = (
        steps(run, "val_loss")
        if "val_loss" in scalars.Tags()["tensors"]
        else [e.step for e in scalars.Scalars("val_loss")]
    )
    assert len(val_steps) == 2 and 0 not in val_steps  # one a validation epoch; the sanity check logged nothing
    assert steps(run, "inputs") == steps(run, "scaled") == val_steps
    assert steps(run, "Confusion Matrix") == val_steps
    from tensorboard.util import tensor_util

    counts = tensor_util.make_ndarray(load_run(run).Tensors("Confusion Matrix (counts)")[-1].tensor_proto)
    x, y = dataset(1, 48).tensors
    predicted = trainer.lightning_module.net(x).argmax(dim=1).numpy()
    expected = np.zeros((CLASSES, CLASSES), np.int64)
    np.add.at(expected, (y.numpy(), predicted), 1)
    assert (counts == expected).all() and counts.sum() == 48  # the last epoch's model, every example once
    assert steps(run, "Confusion Matrix (thumbnails)") == val_steps[:1]  # the same inputs: written once


def test_training_that_dies_leaves_every_logged_image_readable(tmp_path):
    images = ImageCallback(lambda trainer, module, batch, outputs: batch[0][:4])
    with pytest.raises(RuntimeError, match="the training died"):
        fit(tmp_path, Tiny(fail_at=(1, 3)), [images])
    (run,) = (tmp_path / "tiny").iterdir()
    assert len(steps(run, "images")) == 1  # epoch 0's images, flushed and closed on the exception


def test_bad_arguments_are_one_clear_error():
    from tbimg_cli.errors import InputError

    with pytest.raises(InputError, match="fn must be a function"):
        ImageCallback("not a function")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="every_n_epochs must be"):
        ImageCallback(lambda *a: None, every_n_epochs=0)
    with pytest.raises(InputError, match="value_range must be"):
        ImageCallback(lambda *a: None, value_range=(1.0, 0.0))  # at construction, not at the first epoch's end


def test_dataloader_workers_duplicate_nothing(tmp_path):
    images = ImageCallback(lambda trainer, module, batch, outputs: batch[0][:2], every_n_steps=2)
    fit(tmp_path, Tiny(), [images], epochs=1, workers=2)  # forked workers inherit the logger's state
    (run,) = (tmp_path / "tiny").iterdir()
    logged = steps(run, "images")
    assert logged and len(logged) == len(set(logged))  # every step once: no worker wrote the parent's


def test_a_two_process_ddp_fit_logs_each_step_once_and_counts_every_ranks_data(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tensorboard.util import tensor_util

    job = Path(__file__).with_name("lightning_ddp_job.py")
    done = subprocess.run([sys.executable, str(job), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "ddp").iterdir()
    train, val = steps(run, "train"), steps(run, "val")
    assert train and len(train) == len(set(train))  # rank 1 wrote nothing: each step once, no rank hidden
    assert len(val) == 2 and steps(run, "Confusion Matrix") == val
    counts = tensor_util.make_ndarray(load_run(run).Tensors("Confusion Matrix (counts)")[-1].tensor_proto)
    _, y = dataset(1, VALIDATION_SIZE).tensors
    expected = np.zeros((CLASSES, CLASSES), np.int64)
    np.add.at(expected, (y.numpy(), np.load(tmp_path / "predicted.npy")), 1)
    assert (counts == expected).all() and counts.sum() == VALIDATION_SIZE  # both ranks' halves, every example once


def test_bf16_tensors_that_require_grad_go_through_both_callbacks(tmp_path):
    shown: list[np.ndarray] = []  # what each call handed over, in order

    def weights(trainer, module, batch, outputs):  # bf16, requiring grad: what a user hands over mid-training
        images = torch.sigmoid(module.net[1].weight).reshape(CLASSES, 1, 8, 8).to(torch.bfloat16)
        assert images.requires_grad and images.dtype == torch.bfloat16
        shown.append(images.detach().float().numpy())
        return images

    images = ImageCallback(weights, tag="weights", every_n_steps=4)
    matrix = ConfusionMatrixCallback(
        ["low", "mid", "high"], fn=lambda outputs, batch: (outputs["preds"].to(torch.bfloat16), outputs["target"])
    )
    trainer = fit(tmp_path, Tiny(), [images, matrix])
    (run,) = (tmp_path / "tiny").iterdir()
    logged = load_run(run).Tensors("weights")
    assert [event.step for event in logged] == [0, 4, 8]  # Lightning's own step for train_loss: 0, 1, 2...
    assert len(shown) == len(logged)
    for event, values in zip(logged, shown, strict=True):
        pngs = event.tensor_proto.string_val[2:]
        expected = np.clip(values * np.float32(255.5), 0, 255).astype(np.uint8)
        assert len(pngs) == CLASSES
        for png, pixels in zip(pngs, expected[:, 0], strict=True):
            assert np.array_equal(decode_png(png), pixels)
    from tensorboard.util import tensor_util

    counts = tensor_util.make_ndarray(load_run(run).Tensors("Confusion Matrix (counts)")[-1].tensor_proto)
    x, y = dataset(1, 48).tensors
    predicted = trainer.lightning_module.net(x).to(torch.bfloat16).float().argmax(dim=1).numpy()
    expected_counts = np.zeros((CLASSES, CLASSES), np.int64)
    np.add.at(expected_counts, (y.numpy(), predicted), 1)
    assert (counts == expected_counts).all()
