"""tbimg: images into TensorBoard, from the command line and from your own training.

The public API, importable from here and loaded only when first used
(PEP 562), so `import tbimg_cli` and `tbimg --help` stay light:

- `ConfusionMatrixCallback`: a Keras callback (loads Keras when used);
- `log_confusion_matrix`: the same summaries from plain arrays (never loads TensorFlow);
- `EventWriter`: the TensorFlow-free summary writer everything else uses.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["ConfusionMatrixCallback", "EventWriter", "log_confusion_matrix", "__version__"]

_PUBLIC = {
    "ConfusionMatrixCallback": "tbimg_cli.keras_callback",
    "log_confusion_matrix": "tbimg_cli.confusion",
    "EventWriter": "tbimg_cli.writer",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'tbimg_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
