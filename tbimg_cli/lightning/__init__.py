"""Callbacks where PyTorch users train: Lightning's `Trainer` (`callbacks`).

`ImageCallback` logs what a function returns from the validation loop (or every N training steps) through
an `ImageLogger`, into the run folder of the trainer's TensorBoard logger, on rank zero, at Lightning's own
step; `ConfusionMatrixCallback` gathers validation predictions across ranks and logs them with
`log_confusion_matrix` into that same run. Importing this package needs no Lightning; taking a callback
from it imports Lightning (`pytorch_lightning`, or `lightning.pytorch`).

May import `events`, `images` and `confusion`; never `tutorial`, `logs`, `serve` or `cli`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfusionMatrixCallback", "ImageCallback"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tbimg_cli.lightning import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
