"""PNG encoding for image summaries: arrays of images in, standard PNG bytes out, no Pillow.

First, how an array of images reads, the same in every entry point: `log_images`, `ImageLogger`,
`EventWriter.image` and the confusion matrix's gallery all take their arrays through `as_numpy` and
`arranged`, so a PyTorch (C, H, W) or (N, C, H, W) batch, a numpy (N, H, W) stack of masks or a bool
mask reads the same way wherever it is handed over. Tensors are known by their class's MRO (a
`torch.Tensor` subclass counts), without importing torch.

Then the encoder.

A small numpy + zlib encoder rather than Pillow: Pillow's per-call overhead caps
it far below what a 10,000-image summary needs (`bench/README.md` has the
figures). The output is a standard, lossless PNG, so decoded pixels equal the
input. Every row after the first is filtered with PNG's "Up" (each byte less the
one above it, one vectorised subtraction for the batch): smooth pictures then
deflate to about 60% of their unfiltered size, and noise or flat backgrounds
lose nothing (libpng, which `tf.image.encode_png` uses, chooses a filter per row
at about ten times the cost). Deflate is ISA-L's (`isal`, a dependency) when it
imports, zlib's otherwise: the same zlib-format stream, of the same size as
zlib's level 1 to within 2%, 2.7x faster for a 32x32 RGB image and 9x for
256x256 (bench/README.md, "PNG deflate"). Level 1 where `tf.image.encode_png`
uses 6, except for small images (`SMALL_PNG_BYTES`: Fashion-MNIST, CIFAR):
ISA-L's level 1 builds its Huffman codes for each image, about 9 us, which is
most of the work for 3 KB, and its level 0 uses fixed ones (3x faster for a
32x32 RGB image, 6x for 28x28 grey; 30-45% larger). When a batch's first image
does not shrink at all (noise: random inputs, an untrained model's output), the
rest of the batch is stored uncompressed (zlib level 0): deflating them would
take ten times as long for no smaller file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from tbimg_cli.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

CHANNELS = (1, 3, 4)
Layout = Literal["auto", "HW", "HWC", "CHW", "NHW", "NHWC", "NCHW"]


def is_torch(item: Any) -> bool:
    """A `torch.Tensor` or a subclass of it (a `Parameter`, a user's own), known without importing torch."""
    return any(cls.__name__ == "Tensor" and cls.__module__.startswith("torch") for cls in type(item).__mro__)


def torch_values(tensor: Any) -> Any:
    """A tensor numpy can read, as `SummaryWriter` takes them: detached from autograd, on the CPU, and
    bfloat16 (which numpy has no type for) widened to float32."""
    tensor = tensor.detach()
    if str(tensor.dtype) == "torch.bfloat16":
        tensor = tensor.float()
    return tensor.cpu()


def as_numpy(item: Any) -> tuple[NDArray[Any], bool]:
    """(the values as a numpy array, whether their layout guess is channels first: a PyTorch tensor's is)."""
    import numpy as np

    if is_torch(item):
        return np.asarray(torch_values(item)), True
    return np.asarray(item), False


def guess_layout(shape: tuple[int, ...], *, channels_first: bool) -> Layout:
    """Which axis is which, when the caller did not say: channels last unless the array is PyTorch's.

    A 3-D array whose last axis cannot be channels is N grey images (masks,
    say), since numpy code keeps channels last; PyTorch's (C, H, W) is read
    channels first, and so is an (N, C, H, W) whose last axis cannot be channels.
    """
    if len(shape) == 2:
        return "HW"
    if len(shape) == 3:
        first, last = shape[0] in CHANNELS, shape[-1] in (*CHANNELS, 2)
        if channels_first and first:
            return "CHW"
        if last:
            return "HWC"
        return "NHW"
    if len(shape) == 4:
        if channels_first and shape[1] in CHANNELS:
            return "NCHW"
        if shape[-1] in CHANNELS or shape[1] not in CHANNELS:
            return "NHWC"
        return "NCHW"
    raise InputError(f"images must have 2 to 4 dimensions (HW, HWC, NHWC...), got {len(shape)}: shaped {shape}")


def arranged(array: NDArray[Any], layout: Layout, *, channels_first: bool = False) -> NDArray[Any]:
    """The array as (N, H, W, C), C in 1, 3, 4 (`auto`: `guess_layout`).

    Raises:
        InputError: for a layout that does not fit, another channel count, no images or no pixels.
    """
    if layout == "auto":
        layout = guess_layout(array.shape, channels_first=channels_first)
    if array.ndim != len(layout):
        raise InputError(f"layout {layout} needs {len(layout)} dimensions, the images have {array.ndim}: {array.shape}")
    order = [layout.index(axis) for axis in "NHWC" if axis in layout]
    batch = array.transpose(order)
    if "N" not in layout:
        batch = batch[None]
    if "C" not in layout:
        batch = batch[..., None]
    if batch.shape[-1] not in CHANNELS:
        raise InputError(f"images must have 1, 3 or 4 channels (grey, RGB, RGBA), got {batch.shape[-1]}")
    if batch.shape[0] == 0:
        raise InputError("no images: the array is empty")
    if 0 in batch.shape[1:3]:
        raise InputError(f"images must be at least 1x1 pixels, got {batch.shape[2]}x{batch.shape[1]}")
    return batch


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_ZLIB_LEVEL = 1
SMALL_PNG_BYTES = 4096  # filtered rows up to this deflate at ISA-L's level 0 (see the module's docstring)
PARALLEL_PNGS = 512  # per thread, for images past SMALL_PNG_BYTES: fewer are encoded faster than threads start
# PNG colour types by channel count: grey, RGB, RGBA.
_PNG_COLOUR_TYPE = {1: 0, 3: 2, 4: 6}
_BIG_ENDIAN_U32 = struct.Struct(">I")
_IDAT_CRC = zlib.crc32(b"IDAT")  # a chunk's CRC covers its type, then its data
Deflate = Callable[[Any, int], bytes]  # (bytes-like, level) -> a zlib-format stream


def _fastest_deflate() -> Deflate:
    try:
        from isal import isal_zlib
    except ImportError:  # a platform without its wheel: zlib's PNGs decode the same, and are made slower
        return zlib.compress
    return isal_zlib.compress


DEFLATE: Deflate = _fastest_deflate()


def to_uint8_batch(images: ArrayLike) -> NDArray[np.uint8]:
    """Normalise an image array to uint8 (N, H, W, C) the way `tf.summary.image` does.

    Axes read as in every entry point (`guess_layout`): (H, W) and (H, W, C) are one
    image, (N, H, W) and (N, H, W, C) are N images, a PyTorch tensor's (C, H, W) and
    (N, C, H, W) are channels first, and so is a numpy (N, C, H, W) whose last axis cannot be
    channels. Floats are taken as [0, 1] and converted like `tf.image.convert_image_dtype(
    saturate=True)`: multiplied by 255.5 in their own precision, clipped to [0, 255],
    truncated; bools are 0 and 255. A tensor that requires grad is detached, as
    `SummaryWriter` does; bfloat16 is widened.

    Args:
        images: anything `numpy.asarray` takes, or a PyTorch tensor, of uint8, bool or floats.

    Returns:
        A uint8 array shaped (N, H, W, C) with C in {1, 3, 4} and N >= 1.

    Raises:
        InputError: for another shape, channel count or dtype, an empty batch, or
            images of zero width or height.
    """
    import numpy as np

    array, channels_first = as_numpy(images)
    array = arranged(array, "auto", channels_first=channels_first)
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(array.dtype, np.floating):
        scaled = array * array.dtype.type(255.5)
        return np.clip(scaled, 0, 255).astype(np.uint8)
    raise InputError(f"images must be uint8, bool or floats in [0, 1], got {array.dtype}")


def encode_pngs(images: NDArray[np.uint8] | NDArray[np.uint16], *, deflate: Deflate | None = None) -> list[bytes]:
    """PNG bytes for each image of a uint8 (or uint16: 16-bit PNGs) array, in order.

    The filter bytes of every scanline are added in one vectorised step, so
    the per-image cost is little more than zlib's; and since zlib lets go of
    the GIL while it compresses, large batches of images past `SMALL_PNG_BYTES`
    are split over one thread per core (`PARALLEL_PNGS` images and up).

    Args:
        images: uint8 or uint16, shaped (N, H, W, C) with C in {1, 3, 4}, as `to_uint8_batch` returns.
        deflate: `DEFLATE` unless given (the tests give `zlib.compress`, the fallback, too).

    Returns:
        N PNG files as bytes.
    """
    import numpy as np

    count, height, width, channels = images.shape
    depth = 8 * images.dtype.itemsize
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, _PNG_COLOUR_TYPE[channels], 0, 0, 0))
    prefix = PNG_SIGNATURE + header
    suffix = _png_chunk(b"IEND", b"")
    row_bytes = width * channels * images.dtype.itemsize
    rows = np.empty((count, height, 1 + row_bytes), dtype=np.uint8)
    rows[:, 0, 0] = 0  # each row's filter type: none for the first, "Up" for the others
    rows[:, 1:, 0] = 2
    if depth == 8:  # straight into the rows, no intermediate copy
        pixels = rows[:, :, 1:].reshape(count, height, width, channels)
        if channels > 1 and images.strides[3] > images.strides[2]:  # a channels-first tensor, transposed:
            for channel in range(channels):  # a plane at a time reads memory in order (4x faster)
                pixels[..., channel] = images[..., channel]
        else:
            pixels[...] = images
    else:  # PNG samples are big-endian
        big_endian = np.ascontiguousarray(images.astype(">u2", copy=False))
        rows[:, :, 1:] = big_endian.view(np.uint8).reshape(count, height, row_bytes)
    if height > 1:  # "Up": bytes wrap modulo 256, as PNG's filters do
        rows[:, 1:, 1:] = rows[:, 1:, 1:] - rows[:, :-1, 1:]  # the right side is computed first: no overlap

    def encode(start: int, stop: int) -> list[bytes]:
        pngs: list[bytes] = []
        compress, crc32, pack, join = deflate or DEFLATE, zlib.crc32, _BIG_ENDIAN_U32.pack, b"".join
        small = rows[0].nbytes <= SMALL_PNG_BYTES and compress is not zlib.compress  # zlib's level 0 stores
        level = 0 if small else PNG_ZLIB_LEVEL
        for i in range(start, stop):  # the IDAT chunk spelled out: no intermediate copies
            data = compress(rows[i], level)
            if i == start and len(data) >= rows[i].nbytes:  # noise: stored is as small, and 10x faster
                compress, level = zlib.compress, 0  # zlib's level 0 stores (ISA-L's 0 is a fast deflate)
                data = compress(rows[i], level)  # ISA-L's level 0 makes noise larger than it is
            pngs.append(join((prefix, pack(len(data)), b"IDAT", data, pack(crc32(data, _IDAT_CRC)), suffix)))
        return pngs

    # Small images take one thread: their deflate is a couple of microseconds, about what the Python around it
    # costs under the GIL, so a second thread only contends for it (10,000 Fashion-MNIST: 32 ms on one, 50 on two).
    workers = min(os.cpu_count() or 1, count // PARALLEL_PNGS) if rows[0].nbytes > SMALL_PNG_BYTES else 1
    if workers < 2:
        return encode(0, count)
    from concurrent.futures import ThreadPoolExecutor

    bounds = [count * k // workers for k in range(workers + 1)]
    with ThreadPoolExecutor(workers, thread_name_prefix="tbimg-png") as pool:
        parts = pool.map(encode, bounds[:-1], bounds[1:])
        return [png for part in parts for png in part]


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, without decoding it.

    Raises:
        InputError: when the bytes do not start like a PNG.
    """
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise InputError("not a PNG image: the bytes do not start with a PNG signature and header")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
