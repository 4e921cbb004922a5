"""Fashion-MNIST with PyTorch Lightning: inputs, first-layer weights and a confusion matrix in TensorBoard.

    pip install torch && pip install 'tbimg[lightning]'
    python docs/examples/lightning_fashion_mnist.py
    tensorboard --logdir logs  # or tbimg serve logs: every step, in the tbimg tab

README's "PyTorch Lightning" section shows this file from its imports down (a test holds the two
equal and runs it). It reads Fashion-MNIST from the Keras cache or downloads it, or from the files
`TBIMG_DATA_DIR` names.
"""

import os

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import TensorBoardLogger

from tbimg_cli.lightning import ConfusionMatrixCallback, ImageCallback
from tbimg_cli.tutorial.data import CLASS_NAMES, load


def loader(split: str, shuffle: bool) -> torch.utils.data.DataLoader:
    images, labels = load(split, os.environ.get("TBIMG_DATA_DIR"))  # uint8 28x28 images, class ids
    x = torch.from_numpy(images).unsqueeze(1).float() / 255  # N x 1 x 28 x 28, in [0, 1]
    data = torch.utils.data.TensorDataset(x, torch.from_numpy(labels).long())
    return torch.utils.data.DataLoader(data, batch_size=128, shuffle=shuffle)


class Classifier(pl.LightningModule):
    """The tutorial's model: Flatten, Dense 32 relu, Dense 10."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        return {"preds": logits, "target": y}  # what ConfusionMatrixCallback collects

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    trainer = pl.Trainer(
        max_epochs=2,
        logger=TensorBoardLogger("logs", name="fashion"),  # one run, logs/fashion/version_N, for everything
        callbacks=[
            # the last validation batch's first 16 inputs, at each validation epoch's end
            ImageCallback(lambda trainer, module, batch, outputs: batch[0][:16], tag="validation inputs"),
            # what each first-layer unit looks for, every 50 training steps (any range: scaled per image set)
            ImageCallback(
                lambda trainer, module, batch, outputs: module.net[1].weight.reshape(32, 1, 28, 28),
                tag="first layer",
                every_n_steps=50,
                value_range="auto",
            ),
            # every rank's validation predictions; with images= the gallery of mistakes and the explorer's thumbnails
            ConfusionMatrixCallback(CLASS_NAMES, images=lambda batch: batch[0]),
        ],
    )
    trainer.fit(Classifier(), loader("train", shuffle=True), loader("test", shuffle=False))
