"""Images from a Lightning fit (issue 28): `ImageCallback` against no logging and `add_images`.

    pip install torch==2.13.0 && pip install -e '.[lightning]'
    python bench/bench_lightning.py --runs 15 --epochs 4 --images smooth

A small conv model (two conv layers, 3x32x32 inputs, 10 classes) fitted on CPU for `--epochs` (4: 256 steps) of
2,048 images (`--images noise` or `smooth`, see `inputs`) in batches of 32, alternating, in one process,
medians of `--runs`:
- no image logging;
- `ImageCallback(every_n_steps=10)` logging the batch's first 16 images (16x3x32x32 floats);
- the same 16 images every 10 steps through `self.logger.experiment.add_images` (PyTorch's
  `SummaryWriter`, what Lightning's `TensorBoardLogger` hands out).

The added time is given two ways: the difference of the medians, and the median of each round's own
differences (its fits ran one after another, so the machine's slow drifts cancel), with its quartiles.
Then 3 more fits of each logging way with `time.thread_time` around the calls that log (`CpuAccount`): the
CPU each spends per logged call, on the training thread and on tbimg's writer thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from tbimg_cli.lightning import ImageCallback

EVERY = 10


class Conv(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
            torch.nn.Flatten(), torch.nn.Linear(32 * 16, 10),
        )  # fmt: skip

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class AddImages(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % EVERY == 0:
            trainer.logger.experiment.add_images("inputs", batch[0][:16], trainer.global_step)


def inputs(kind: str) -> torch.Tensor:
    """2,048 3x32x32 images: "noise" (uniform, which PNG cannot shrink) or "smooth" (4x4 noise scaled up
    bilinearly: gradients that deflate to about 2/3, as photographs do)."""
    generator = torch.Generator().manual_seed(0)
    if kind == "noise":
        return torch.rand(2048, 3, 32, 32, generator=generator)
    coarse = torch.rand(2048, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=32, mode="bilinear")


def fit(root: Path, callbacks: list, epochs: int, images: torch.Tensor) -> float:
    labels = torch.randint(0, 10, (len(images),), generator=torch.Generator().manual_seed(1))
    data = torch.utils.data.TensorDataset(images, labels)
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=pl.loggers.TensorBoardLogger(str(root)),
        callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    began = time.perf_counter()
    trainer.fit(Conv(), torch.utils.data.DataLoader(data, batch_size=32))
    return time.perf_counter() - began


class CpuAccount:
    """CPU seconds of the logging, thread by thread (`time.thread_time` around the calls that do it): a
    measure the machine's noise barely touches, where the fit's wall time moves by tens of milliseconds
    between identical fits. On two cores that torch keeps busy, CPU spent logging is about time lost."""

    def __init__(self) -> None:
        from tbimg_cli.images.logger import ImageLogger

        self.seconds: dict[str, float] = {}
        self._wrap(ImageCallback, "_log", "ImageCallback: the training thread (snapshot, queue)")
        self._wrap(ImageLogger, "_write", "ImageCallback: the writer thread (encode, write)")
        self._wrap(ImageLogger, "_flush_file", "ImageCallback: the writer thread (encode, write)")
        self._wrap(AddImages, "on_train_batch_end", "add_images: the training thread (grid, encode, write)")

    def _wrap(self, owner: type, name: str, label: str) -> None:
        original = getattr(owner, name)
        self.seconds.setdefault(label, 0.0)

        def timed(*args, **kwargs):
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.thread_time() - began

        setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images", choices=("noise", "smooth"), default="noise")
    args = parser.parse_args()
    images = inputs(args.images)
    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp(prefix="tbimg-lightning-bench-"))
    ways = {
        "no image logging": lambda: [],
        "ImageCallback(every_n_steps=10)": lambda: [ImageCallback(lambda t, m, b, o: b[0][:16], every_n_steps=EVERY)],
        "add_images every 10 steps": lambda: [AddImages()],
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    fit(root / "warm", [], args.epochs, images)  # first-fit costs (imports, allocator) out of the figures
    for run in range(args.runs):
        for name, make in ways.items() if run % 2 == 0 else reversed(ways.items()):
            times[name].append(fit(root / f"{run}-{len(times[name])}-{name[:3]}", make(), args.epochs, images))
    base = statistics.median(times["no image logging"])
    steps = args.epochs * 64
    logged = -(-steps // EVERY)
    shape = f"{args.images} images, {args.epochs} epochs, {steps} steps, {logged} logged"
    print(f"medians of {args.runs} alternating fits ({shape})")
    added = {}
    for name, values in times.items():
        median = statistics.median(values)
        # Each round's fits ran one after another: their differences cancel the machine's slow drifts.
        paired = sorted(t - b for t, b in zip(values, times["no image logging"], strict=True))
        quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
        added[name] = statistics.median(paired)
        print(
            f"{name}: {median:.2f} s, x{median / base:.3f}, added {median - base:+.3f} s; "
            f"paired by round: median {added[name]:+.3f} s (quartiles {quartiles[0]:+.3f} to {quartiles[2]:+.3f})"
        )
    ours, theirs = added["ImageCallback(every_n_steps=10)"], added["add_images every 10 steps"]
    if ours > 0:
        print(f"added time, paired medians: add_images / ImageCallback = {theirs / ours:.1f}x")
    account = CpuAccount()
    for run in range(3):
        fit(root / f"cpu-{run}-ours", ways["ImageCallback(every_n_steps=10)"](), args.epochs, images)
        fit(root / f"cpu-{run}-theirs", [AddImages()], args.epochs, images)
    print(f"CPU of the logging, per logged call (3 fits each, {logged} calls a fit):")
    for label, seconds in account.seconds.items():
        print(f"  {label}: {seconds / 3 / logged * 1000:.3f} ms")
    ours_cpu = sum(v for k, v in account.seconds.items() if k.startswith("ImageCallback"))
    theirs_cpu = sum(v for k, v in account.seconds.items() if k.startswith("add_images"))
    print(f"  in all: ImageCallback {ours_cpu / 3 / logged * 1000:.3f} ms, add_images "
          f"{theirs_cpu / 3 / logged * 1000:.3f} ms ({theirs_cpu / ours_cpu:.1f}x; add_images' own writer thread "
          "not counted)")  # fmt: skip


if __name__ == "__main__":
    main()
