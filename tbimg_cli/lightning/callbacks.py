"""Lightning callbacks: images from the validation loop, and a confusion matrix over every rank's data.

Both write into the run folder of the trainer's TensorBoard logger (`trainer.logger.log_dir`: the same
run as Lightning's own scalars, one TensorBoard run), or `log_dir` when given, or the trainer's
`default_root_dir` without a TensorBoard logger; on global rank zero only; never during the sanity check;
at the step Lightning logs its metrics at (`shortcuts.lightning_log_step`), so images and `val_loss` share
TensorBoard's step axis. Importing this module imports Lightning (`pytorch_lightning`, else
`lightning.pytorch`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tbimg_cli import shortcuts
from tbimg_cli.errors import InputError
from tbimg_cli.images.values import ValueRange, check_rules


def _lightning() -> Any:
    """The Lightning the user trains with: whichever is imported already, else the installed one."""
    import importlib

    for name in ("lightning.pytorch", "pytorch_lightning"):
        if sys.modules.get(name) is not None:
            return sys.modules[name]
    for name in ("pytorch_lightning", "lightning.pytorch"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("tbimg's Lightning callbacks need Lightning: pip install 'tbimg[lightning]' (torch installed)")


_Callback: Any = _lightning().Callback
ImageFunction = Callable[[Any, Any, Any, Any], Any]


def run_folder_of(trainer: Any, log_dir: str | Path | None) -> str | Path:
    """Where a callback writes: `log_dir`, else the TensorBoard logger's run folder, else the root dir."""
    if log_dir is not None:
        return log_dir
    for logger in getattr(trainer, "loggers", None) or []:
        if type(logger).__name__ == "TensorBoardLogger":
            return str(logger.log_dir)
    return str(trainer.default_root_dir)


def _check_every(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(f"{name} must be a whole number of 1 or more, got {value!r}")


class ImageCallback(_Callback):  # Lightning's Callback, found at import
    """Log what `fn(trainer, module, batch, outputs)` returns: images, or `{tag: images}`.

    By default at the end of every validation epoch, with the last validation batch and its outputs;
    `every_n_epochs` thins that; `every_n_steps` logs from the training loop instead (every N optimizer
    steps, with that step's batch and outputs). Images are anything `log_images` takes (tensors on any
    device, bf16, requiring grad); `value_range` is `log_images`'s, for values outside [0, 1] (a layer's
    weights: `"auto"`). Written by an `ImageLogger` opened at the first images, flushed at
    each epoch's end, closed at `teardown` and on an exception (what was logged stays readable).

    Example:
        >>> trainer = Trainer(callbacks=[ImageCallback(lambda t, m, batch, out: {"reconstruction": out["x_hat"]})])
    """

    def __init__(
        self,
        fn: ImageFunction,
        *,
        tag: str = "images",
        every_n_epochs: int = 1,
        every_n_steps: int | None = None,
        log_dir: str | Path | None = None,
        value_range: ValueRange = None,
    ) -> None:
        super().__init__()
        if not callable(fn):
            raise InputError(f"fn must be a function (trainer, module, batch, outputs) -> images, got {fn!r}")
        _check_every("every_n_epochs", every_n_epochs)
        _check_every("every_n_steps", every_n_steps)
        check_rules("auto", value_range)
        self.fn, self.tag, self.log_dir, self.value_range = fn, tag, log_dir, value_range
        self.every_n_epochs, self.every_n_steps = every_n_epochs, every_n_steps
        self._logger: Any = None
        self._last: tuple[Any, Any] | None = None  # the last validation batch and its outputs

    # Validation

    def on_validation_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.sanity_checking and self.every_n_steps is None:
            self._last = (batch, outputs)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.every_n_steps is not None or self._last is None:
            return
        batch, outputs = self._last
        self._last = None
        if trainer.current_epoch % self.every_n_epochs == 0 and trainer.is_global_zero:
            self._log(trainer, pl_module, batch, outputs)
        self._flush()

    # Training, when asked

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every_n_steps is None or not trainer.is_global_zero:
            return
        step = shortcuts.lightning_log_step(trainer)
        if step % self.every_n_steps == 0:
            self._log(trainer, pl_module, batch, outputs)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._flush()

    # The end, however it comes

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()

    def _log(self, trainer: Any, pl_module: Any, batch: Any, outputs: Any) -> None:
        from tbimg_cli.images.logger import ImageLogger

        produced = self.fn(trainer, pl_module, batch, outputs)
        if produced is None:
            return
        named = produced if isinstance(produced, Mapping) else {self.tag: produced}
        if self._logger is None:
            self._logger = ImageLogger(run_folder_of(trainer, self.log_dir))  # written on rank zero only
        step = shortcuts.lightning_log_step(trainer)
        for tag, images in named.items():
            self._logger.log(str(tag), _detached(images), step, value_range=self.value_range)

    def _flush(self) -> None:
        if self._logger is not None:
            self._logger.flush()

    def _close(self) -> None:
        logger, self._logger = self._logger, None
        if logger is not None:
            logger.close()


class ConfusionMatrixCallback(_Callback):  # Lightning's Callback, found at import
    """A confusion matrix at every validation epoch's end, over every rank's validation data.

    Collects what `validation_step` returns, `{"preds": ..., "target": ...}` (logits, probabilities or
    class ids; or what `fn(outputs, batch) -> (preds, target)` picks), gathers it across ranks
    (`all_gather`), and on rank zero logs it with `log_confusion_matrix` into the run of Lightning's own
    scalars (`subdir=""`, tags that do not collide with Lightning's): the matrix, table, per-class scalars,
    the confusion explorer's counts and examples, and with `images=(batch) -> inputs` the gallery of
    mistakes and the explorer's thumbnails (every validation input is then kept until the epoch's end).
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        *,
        fn: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        images: Callable[[Any], Any] | None = None,
        every_n_epochs: int = 1,
        log_dir: str | Path | None = None,
        max_misclassified: int = 25,
    ) -> None:
        super().__init__()
        _check_every("every_n_epochs", every_n_epochs)
        self.class_names = list(class_names) if class_names is not None else None
        self.fn, self.images, self.every_n_epochs, self.log_dir = fn, images, every_n_epochs, log_dir
        self.max_misclassified = max_misclassified
        self._preds: list[Any] = []
        self._target: list[Any] = []
        self._inputs: list[Any] = []

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._preds, self._target, self._inputs = [], [], []

    def on_validation_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if trainer.sanity_checking:
            return
        if self.fn is not None:
            preds, target = self.fn(outputs, batch)
        elif isinstance(outputs, Mapping) and "preds" in outputs and "target" in outputs:
            preds, target = outputs["preds"], outputs["target"]
        else:
            raise InputError(
                "ConfusionMatrixCallback needs validation_step to return {'preds': ..., 'target': ...}, "
                "or fn=(outputs, batch) -> (preds, target)"
            )
        self._preds.append(preds.detach())
        self._target.append(target.detach())
        if self.images is not None:
            self._inputs.append(self.images(batch).detach())

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or not self._preds or trainer.current_epoch % self.every_n_epochs:
            return
        import torch

        from tbimg_cli.confusion.matrix import log_confusion_matrix

        gathered = [_all_ranks(pl_module, torch.cat(part)) for part in (self._preds, self._target)]
        inputs = _all_ranks(pl_module, torch.cat(self._inputs)) if self._inputs else None
        self._preds, self._target, self._inputs = [], [], []
        if not trainer.is_global_zero:
            return
        preds, target = (_numpy(part) for part in gathered)
        log_confusion_matrix(
            run_folder_of(trainer, self.log_dir),
            target,
            preds,
            shortcuts.lightning_log_step(trainer),
            self.class_names,
            images=None if inputs is None else _numpy(inputs),
            max_misclassified=self.max_misclassified,
            subdir="",
        )


def _all_ranks(module: Any, tensor: Any) -> Any:
    """Every rank's rows in rank order (one rank: the tensor itself)."""
    trainer = getattr(module, "trainer", None)
    if trainer is None or getattr(trainer, "world_size", 1) == 1:
        return tensor
    gathered = module.all_gather(tensor)  # (world, rows, ...)
    return gathered.reshape(-1, *gathered.shape[2:])


def _numpy(tensor: Any) -> Any:
    """A tensor on the CPU as numpy; bf16 and half widened to float32 (numpy has no bf16)."""
    return (tensor.float() if tensor.is_floating_point() else tensor).cpu().numpy()


def _detached(images: Any) -> Any:
    detach = getattr(images, "detach", None)
    return detach() if callable(detach) else images
