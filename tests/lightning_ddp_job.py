"""The tiny LightningModule of tests/test_lightning.py, and a 2-process DDP fit (gloo, CPU) of it:
`python lightning_ddp_job.py OUT_DIR`.

A script of its own because Lightning's `ddp` strategy starts rank 1 by running this command again (inside
pytest it would run pytest again). Rank zero saves the final model's validation predictions to
`OUT_DIR/predicted.npy`, for the test to count a confusion matrix with numpy over all of the data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from tbimg_cli.lightning import ConfusionMatrixCallback, ImageCallback

CLASSES = 3
VALIDATION_SIZE = 64  # 2 ranks x 2 batches of 16: DistributedSampler pads nothing, so no example counts twice


def dataset(seed: int, n: int = 96) -> torch.utils.data.TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=generator)
    y = (x.mean(dim=(1, 2, 3)) * CLASSES * 1.999).long().clamp(0, CLASSES - 1)
    return torch.utils.data.TensorDataset(x, y)


class Tiny(pl.LightningModule):
    """One linear layer over 8x8 inputs; `fail_at=(epoch, batch)` raises there, as training that dies."""

    def __init__(self, fail_at: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, CLASSES))
        self.fail_at = fail_at

    def training_step(self, batch, batch_idx):
        if self.fail_at == (self.current_epoch, batch_idx):
            raise RuntimeError("the training died")
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y), sync_dist=True)
        return {"preds": logits, "target": y, "x": x}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def main(out: Path) -> None:
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=pl.loggers.TensorBoardLogger(str(out), name="ddp"),
        callbacks=[
            ImageCallback(lambda trainer, module, batch, outputs: batch[0][:2], tag="train", every_n_steps=2),
            ImageCallback(lambda trainer, module, batch, outputs: batch[0][:2], tag="val"),
            ConfusionMatrixCallback(["low", "mid", "high"]),
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    loader = torch.utils.data.DataLoader
    trainer.fit(Tiny(), loader(dataset(0, 128), batch_size=16), loader(dataset(1, VALIDATION_SIZE), batch_size=16))
    if trainer.is_global_zero:
        x, _ = dataset(1, VALIDATION_SIZE).tensors
        with torch.no_grad():
            np.save(out / "predicted.npy", trainer.lightning_module.net(x).argmax(dim=1).numpy())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
