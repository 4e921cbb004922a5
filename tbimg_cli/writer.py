"""The shared writer: image and scalar summaries into TensorBoard event files, no TensorFlow.

Contract (what `tf.summary.image` writes, byte for byte where it matters):
an image summary is a DT_STRING tensor of shape [k+2] holding
`[str(width), str(height), png_0, ..., png_{k-1}]`, with plugin name "images"
and content `ImagePluginData(version=0)`; a scalar is a DT_FLOAT tensor of
shape [] with plugin "scalars". Every value carries its metadata, as TF 2's
writer does. Records use TFRecord framing (`records.py`); the first record of
a file is the `file_version: "brain.Event:2"` event, and the file is named
`events.out.tfevents.<10-digit time>.<host>.<pid>.<n>.v2`.

Every command writes through this module, so there is one place that knows
TensorBoard's format. The event file is opened lazily (no empty files for a
command that fails before writing) and each record is written with a single
`write` call, so an exception or Ctrl-C never leaves half a record behind.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

from tbimg_cli.errors import InputError
from tbimg_cli.records import frame

IMAGES_PLUGIN = "images"
SCALARS_PLUGIN = "scalars"
FILE_VERSION = "brain.Event:2"
_file_counter = itertools.count()


def to_uint8_batch(images):
    """Normalise an image array to uint8 (N, H, W, C) the way `tf.summary.image` does.

    Shapes: (H, W) and (H, W, C) are one image; (N, H, W) and (N, H, W, C) are
    N images. A 3-D array whose last axis is 1, 3 or 4 is read as (H, W, C).
    Floats are taken as [0, 1] and converted like `tf.image.convert_image_dtype(
    saturate=True)`: multiplied by 255.5 in their own precision, clipped to
    [0, 255], truncated.
    """
    import numpy as np

    array = np.asarray(images)
    if array.ndim == 2:
        array = array[None, :, :, None]
    elif array.ndim == 3:
        array = array[None] if array.shape[-1] in (1, 3, 4) else array[..., None]
    elif array.ndim != 4:
        raise InputError(f"images must be shaped (H, W), (H, W, C), (N, H, W) or (N, H, W, C), got {array.shape}")
    if array.shape[-1] not in (1, 3, 4):
        raise InputError(f"images must have 1, 3 or 4 channels, got {array.shape[-1]}")
    if 0 in array.shape[1:3]:
        raise InputError(f"images must be at least 1x1 pixels, got {array.shape[1]}x{array.shape[2]}")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        scaled = array * array.dtype.type(255.5)
        return np.clip(scaled, 0, 255).astype(np.uint8)
    raise InputError(f"images must be uint8 or floats in [0, 1], got {array.dtype}")


class EventWriter:
    """Writes summaries for one run directory; use as a context manager."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._file = None
        self.path: Path | None = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def image(self, tag: str, images, step: int = 0, description: str | None = None) -> int:
        """Encode and write all `images` as one summary with k samples; returns k."""
        from tbimg_cli.png import encode_batch

        batch = to_uint8_batch(images)
        _, height, width, _ = batch.shape
        self.png_images(tag, encode_batch(batch), width, height, step, description)
        return len(batch)

    def png_images(
        self, tag: str, pngs: list[bytes], width: int, height: int, step: int = 0, description: str | None = None
    ) -> None:
        """Write already-encoded PNGs as they are (figures are never decoded and re-encoded)."""
        from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.image import plugin_data_pb2

        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(pngs) + 2)]),
            string_val=[str(width).encode(), str(height).encode(), *pngs],
        )
        content = plugin_data_pb2.ImagePluginData(version=0).SerializeToString()
        self._write_value(tag, tensor, IMAGES_PLUGIN, content, step, description)

    def scalar(self, tag: str, value: float, step: int, description: str | None = None) -> None:
        """A float32 scalar in TF 2's tensor form (what `tf.summary.scalar` writes)."""
        import numpy as np
        from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.scalar import plugin_data_pb2

        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            tensor_content=np.float32(value).astype("<f4").tobytes(),
        )
        content = plugin_data_pb2.ScalarPluginData(version=0).SerializeToString()
        self._write_value(tag, tensor, SCALARS_PLUGIN, content, step, description)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write_value(self, tag, tensor, plugin, content, step, description) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        metadata = summary_pb2.SummaryMetadata(
            summary_description=description or "",
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=content),
        )
        value = summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)
        event = event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value]))
        self._write_event(event)

    def _write_event(self, event) -> None:
        if self._file is None:
            self._open()
        self._file.write(frame(event.SerializeToString()))

    def _open(self) -> None:
        from tensorboard.compat.proto import event_pb2

        now = time.time()
        name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.{next(_file_counter)}.v2"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / name
        self._file = open(self.path, "wb")
        self._write_event(event_pb2.Event(wall_time=now, file_version=FILE_VERSION))
