"""tbimg: images into TensorBoard, from the command line and from your own training.

The public API, importable from here and loaded only when first used
(PEP 562), so `import tbimg_cli` and `tbimg --help` stay light; type checkers
see the real names through the `TYPE_CHECKING` imports below:

- `log_confusion_matrix`: a confusion matrix, its table, a gallery of mistakes
  and per-class scalars from plain arrays (never loads TensorFlow);
- `ConfusionMatrixCallback`: the same every N epochs of Keras training (needs
  `pip install 'tbimg[train]'`; loads Keras when used);
- `log_images`: your own images (files, arrays, tensors, Pillow images,
  figures) as one image summary, written before it returns;
- `ImageLogger`: the same from a training loop without waiting: encoded and
  written on background threads, in call order;
- `EventWriter`: the TensorFlow-free summary writer everything else uses.

Errors are `TbimgError`s: bad values are also `ValueError`s, bad types
`TypeError`s, a missing extra an `ImportError` (see `tbimg_cli.errors`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tbimg_cli.errors import MissingExtraError

if TYPE_CHECKING:
    from tbimg_cli.confusion.keras_callback import ConfusionMatrixCallback
    from tbimg_cli.confusion.matrix import log_confusion_matrix
    from tbimg_cli.events.writer import EventWriter
    from tbimg_cli.images.logger import ImageLogger, log_images

__version__ = "0.1.0"
__all__ = ["ConfusionMatrixCallback", "EventWriter", "ImageLogger", "__version__", "log_confusion_matrix", "log_images"]

_PUBLIC = {
    "ConfusionMatrixCallback": "tbimg_cli.confusion.keras_callback",
    "log_confusion_matrix": "tbimg_cli.confusion.matrix",
    "EventWriter": "tbimg_cli.events.writer",
    "log_images": "tbimg_cli.images.logger",
    "ImageLogger": "tbimg_cli.images.logger",
}
# Names that need an extra installed, and the extra.
_EXTRA_OF = {"ConfusionMatrixCallback": "train"}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'tbimg_cli' has no attribute {name!r}")
    try:
        module = importlib.import_module(_PUBLIC[name])
    except ImportError as exc:
        extra = _EXTRA_OF.get(name)
        if extra is None or exc.name not in ("keras", "tensorflow", "tf_keras"):
            raise
        raise MissingExtraError(f"{name} needs Keras and TensorFlow: pip install 'tbimg[{extra}]'") from exc
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
