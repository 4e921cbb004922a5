"""Any image a user has, as the encoded bytes an image summary holds: the value rules and whole-file checks.

TensorBoard's image plugin serves each sample's bytes as they are, and its
browser shows PNG, JPEG, GIF and BMP, so files in those formats are stored
untouched (exported back, they are the same file; a 16-bit PNG stays 16-bit)
after a check of the whole file: a cut or damaged file is refused rather than
logged as if it were an image. Other formats Pillow reads (WebP, TIFF...) and
every in-memory kind (arrays, tensors, Pillow images, matplotlib figures)
become PNGs, under one set of value rules (`VALUE_RULES`, the table in the
README). The file checks themselves live in `files.py`.
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from tbimg_cli.errors import InputError, InputTypeError
from tbimg_cli.events.png import Layout, arranged, encode_pngs, guess_layout, is_torch, torch_values
from tbimg_cli.events.writer import EncodedImage
from tbimg_cli.images.files import DEFAULT_MAX_PIXELS, check_pixels, checked_size, image_format

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

LAYOUTS = ("auto", "HW", "HWC", "CHW", "NHW", "NHWC", "NCHW")
_NUMPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"

ValueRange = Union[Literal["auto"], tuple[float, float], None]  # noqa: UP007 - a runtime alias, read on Python 3.10

VALUE_RULES = """\
| values | become |
|---|---|
| uint8 | the pixels as they are |
| uint16 | a 16-bit PNG, the values as they are |
| bool | 0 (False) and 255 (True) |
| floats in [0, 1] | x 255, as `tf.summary.image` does (0.5 is 127) |
| other integers (int64, int32, uint32...) within 0..255 | uint8 |
| other floats or integers | an error naming their range, unless `value_range=(lo, hi)` (lo to 0, hi to 255) or "auto" |
| NaN or infinity | an error, whatever `value_range` says |
"""


def image_file(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, value_range: ValueRange = None) -> EncodedImage:
    """An image file's bytes as a summary sample: stored as they are when TensorBoard shows them, else as PNG.

    `value_range` maps the values of a file Pillow decodes outside 8 and 16 bits (a float TIFF) as it
    maps an array's; a stored format keeps its bytes.

    Raises:
        InputError: for an empty, cut, damaged or unreadable file, or one of more than `max_pixels` pixels.
    """
    if not data:
        raise InputError("the file is empty")
    kind = image_format(data)
    if kind is None:
        return _decoded_by_pillow(data, max_pixels, value_range)
    width, height = checked_size(bytes(data), kind, max_pixels)
    if kind == "jpeg" and _turned_sideways(data):
        width, height = height, width
    return EncodedImage(bytes(data), width, height, kind)


def _turned_sideways(jpeg: bytes) -> bool:
    """Whether the JPEG's EXIF orientation turns it a quarter (5 to 8): browsers, and so TensorBoard's page,
    show it turned, so the summary's width and height are the turned ones. The bytes stay as they are."""
    if b"Exif\x00\x00" not in jpeg[:65536]:
        return False  # no EXIF block: no Pillow needed
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            return image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def load_file(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, **rules: Any
) -> dict[str, list[EncodedImage]]:
    """The images a file holds, by name: `{"": [image]}` for an image file, one entry per array of an `.npz`.

    `rules` are `encode`'s `layout` and `value_range`, for arrays.

    Raises:
        InputError: when the file holds no valid image, or is no regular file (a FIFO would block the read).
        OSError: when it cannot be read.
    """
    import stat

    with open(path, "rb", opener=_nonblocking) as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise InputError("not a regular file (a FIFO, socket or device): nothing to read as an image")
        data = file.read()
    return load_bytes(data, max_pixels=max_pixels, **rules)


def _nonblocking(path: str, flags: int) -> int:
    """Open without waiting for a writer, which opening a FIFO would do; checked to be a regular file after."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def load_bytes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, **rules: Any) -> dict[str, list[EncodedImage]]:
    """`load_file` for bytes already read (standard input)."""
    if data.startswith((_NUMPY_MAGIC, _ZIP_MAGIC)):
        return {name: encode(array, **rules) for name, array in _arrays(data).items()}
    return {"": [image_file(data, max_pixels=max_pixels, value_range=rules.get("value_range"))]}


def encode(
    images: Any,
    *,
    layout: Layout = "auto",
    value_range: ValueRange = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[EncodedImage]:
    """Every kind of image `log_images` takes, as summary samples (see its docstring for the kinds).

    Raises:
        InputError: for values, shapes or files the rules refuse.
        InputTypeError: for something that is no image at all.
    """
    if _is_single(images):
        return _encode_one(images, layout, value_range, max_pixels)
    if isinstance(images, Sequence) and images and all(_is_single(item) for item in images):
        return [sample for item in images for sample in _encode_one(item, layout, value_range, max_pixels)]
    return _encode_one(images, layout, value_range, max_pixels)


def snapshot(images: Any, new_array: Callable[[tuple[int, ...], Any], NDArray[Any]] | None = None) -> Any:
    """A copy of `images` that later changes by the caller cannot reach (for encoding on another thread).

    Arrays and tensors are copied (the caller may reuse the buffer); figures
    are drawn now, since matplotlib is not thread-safe; paths and bytes are
    immutable and kept as they are. Arrays are copied into `new_array(shape,
    dtype)` when given (a pool of buffers: fresh memory costs page faults).
    """
    import numpy as np

    if isinstance(images, str | os.PathLike | bytes):
        return images
    if isinstance(images, bytearray | memoryview):
        return bytes(images)
    if _is_figure(images):
        return _figure_png(images)
    if _is_pil(images):
        return images.copy()
    if isinstance(images, list | tuple) and images and all(_is_single(item) for item in images):
        return [snapshot(item, new_array) for item in images]
    channels_first = is_torch(images)
    array = _as_array(images)
    copied = (new_array or np.empty)(array.shape, array.dtype)
    np.copyto(copied, array)
    return _ChannelsFirst(copied) if channels_first else copied


def snapshot_arrays(images: Any) -> list[NDArray[Any]]:
    """The arrays a snapshot copied, to go back to the pool once encoded."""
    if isinstance(images, list):
        return [array for item in images for array in snapshot_arrays(item)]
    if isinstance(images, _ChannelsFirst):
        return [images.array]
    return [images] if type(images).__module__ == "numpy" and hasattr(images, "shape") else []


def snapshot_bytes(images: Any) -> int:
    """Memory a snapshot holds, for the logger's bound on queued work."""
    if isinstance(images, list):
        return sum(snapshot_bytes(item) for item in images)
    if isinstance(images, _ChannelsFirst):
        return int(images.array.nbytes)
    if isinstance(images, bytes):
        return len(images)
    return int(getattr(images, "nbytes", 0)) or 4096


def check_rules(layout: object, value_range: object) -> None:
    """Refuse a bad `layout` or `value_range` at the call, before any work."""
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if value_range is None or value_range == "auto":
        return
    pair: Sequence[object] = value_range if isinstance(value_range, tuple | list) else ()
    numbers = [v for v in pair if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    if len(pair) != 2 or len(numbers) != 2 or numbers[0] >= numbers[1]:
        raise InputError(f"value_range must be (low, high) with low < high, or 'auto'; got {value_range!r}")


# In-memory kinds


class _ChannelsFirst:
    """A snapshot of a PyTorch tensor: its values, remembering that its layout guess is channels first."""

    def __init__(self, array: NDArray[Any]) -> None:
        self.array = array


def _is_single(item: Any) -> bool:
    """True for what is one image or one array (as opposed to a sequence of them)."""
    return (
        isinstance(item, str | os.PathLike | bytes | bytearray | memoryview | _ChannelsFirst)
        or _is_pil(item)
        or _is_figure(item)
        or hasattr(item, "__array__")
        or hasattr(item, "__array_interface__")
    )


def _is_pil(item: Any) -> bool:
    return type(item).__module__.startswith("PIL.") and hasattr(item, "getbands")


def _is_figure(item: Any) -> bool:
    return type(item).__module__.startswith("matplotlib.") and hasattr(item, "savefig")


def _encode_one(item: Any, layout: Layout, value_range: ValueRange, max_pixels: int) -> list[EncodedImage]:
    if isinstance(item, str | os.PathLike):
        found = load_file(item, max_pixels=max_pixels, layout=layout, value_range=value_range)
        return [image for images in found.values() for image in images]
    if isinstance(item, bytes | bytearray | memoryview):
        found = load_bytes(bytes(item), max_pixels=max_pixels, layout=layout, value_range=value_range)
        return [image for images in found.values() for image in images]
    if _is_figure(item):
        return [image_file(_figure_png(item), max_pixels=max_pixels)]
    if _is_pil(item):
        return _png_samples(_pil_pixels(item), "auto", value_range)  # HW or HWC: Pillow knows its layout
    channels_first = isinstance(item, _ChannelsFirst) or is_torch(item)
    array = item.array if isinstance(item, _ChannelsFirst) else _as_array(item)
    if layout == "auto":
        layout = guess_layout(array.shape, channels_first=channels_first)
    return _png_samples(array, layout, value_range)


def _shown(value: float, batch: NDArray[Any]) -> str:
    """A value for a message: 4 digits, unless they round it into [0, 1] (1.0000001 is not "1")."""
    short = f"{value:.4g}"
    if (0.0 <= float(short) <= 1.0) == (0.0 <= value <= 1.0):
        return short
    import numpy as np

    return np.format_float_positional(batch.dtype.type(value), unique=True, trim="-")


def _as_array(item: Any) -> NDArray[Any]:
    import numpy as np

    try:
        array = np.asarray(torch_values(item) if is_torch(item) else item)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputTypeError(f"cannot read {type(item).__name__} as an image array: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise InputTypeError(
            f"cannot read an array of {array.dtype} as images: give numbers (uint8, uint16, bool or floats), "
            "paths, bytes, Pillow images or matplotlib figures"
        )
    return array


def _figure_png(figure: Any) -> bytes:
    """A figure's PNG through matplotlib's public API (savefig draws on a temporary Agg canvas)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _pil_pixels(image: Any) -> NDArray[Any]:
    import numpy as np

    if image.mode in ("L", "RGB", "RGBA", "1", "I", "F") or image.mode.startswith("I;16"):
        array = np.asarray(image)
        return array.astype(np.uint16) if image.mode.startswith("I;16") else array
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))


def _png_samples(array: NDArray[Any], layout: Layout, value_range: ValueRange) -> list[EncodedImage]:
    batch = arranged(array, layout)
    pixels = _pixel_values(batch, value_range)
    height, width = pixels.shape[1:3]
    return [EncodedImage(png, width, height, "png") for png in encode_pngs(pixels)]


def _pixel_values(batch: NDArray[Any], value_range: ValueRange) -> NDArray[np.uint8] | NDArray[np.uint16]:
    """The value rules (`VALUE_RULES`)."""
    import numpy as np

    kind = batch.dtype.kind
    if kind == "b":
        return batch.astype(np.uint8) * np.uint8(255)
    if value_range is None and batch.dtype in (np.uint8, np.uint16):
        return batch
    low, high = float(batch.min()), float(batch.max())  # NaN in the batch is NaN in both, infinity in one
    if (kind == "f" or value_range is not None) and not (math.isfinite(low) and math.isfinite(high)):
        bad = int(batch.size - np.count_nonzero(np.isfinite(batch)))
        raise InputError(f"images hold NaN or infinity in {bad:,} of {batch.size:,} values")
    if value_range is not None:
        if value_range != "auto":
            low, high = float(value_range[0]), float(value_range[1])
        scale = 1.0 / (high - low) if high > low else 0.0
        unit = (batch.astype(np.float64) - low) * scale
        return (np.clip(unit, 0.0, 1.0) * 255.5).astype(np.uint8)
    if kind == "f":
        if low < 0.0 or high > 1.0:
            raise InputError(
                f"float images must hold values in [0, 1]; these span [{_shown(low, batch)}, {_shown(high, batch)}]: "
                "pass value_range=(low, high) or 'auto' (--value-range)"
            )
        values = batch.astype(np.float32) if batch.dtype.itemsize < 4 else batch
        # In [0, 1], times 255.5 is in [0, 255.5]: truncated, 0..255 with no clip, cast as it is multiplied
        # (one pass, no float temporary; the memory order kept, for encode_pngs' channels-first copy).
        pixels = np.empty_like(values, dtype=np.uint8)
        np.multiply(values, values.dtype.type(255.5), out=pixels, casting="unsafe")
        return pixels
    if low >= 0 and high <= 255:
        return batch.astype(np.uint8)
    raise InputError(
        f"{batch.dtype} images must hold values in 0..255 to be read as 8-bit (these span {low:.0f}..{high:.0f}): "
        "give uint16 for 16 bits, or pass value_range=(low, high) or 'auto' (--value-range)"
    )


def _arrays(data: bytes) -> dict[str, NDArray[Any]]:
    """The arrays of a `.npy` (named "") or `.npz` file, never unpickling objects."""
    import numpy as np

    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded:
            arrays = {name: loaded[name] for name in loaded.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError("the array holds Python objects, not numbers: save numbers (uint8, floats...)") from exc
        raise InputError(f"not a readable numpy array file: {exc}") from exc
    except (OSError, EOFError, KeyError) as exc:
        raise InputError(f"not a readable numpy array file ({exc or 'cut short'})") from exc
    if not arrays:
        raise InputError("the .npz file holds no arrays")
    return arrays


# Files: header sizes and whole-file checks


def _decoded_by_pillow(data: bytes, max_pixels: int, value_range: ValueRange = None) -> EncodedImage:
    """A format TensorBoard does not show (WebP, TIFF...), decoded by Pillow after its size is checked."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    image = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            check_pixels(*image.size, max_pixels)
            image.load()
    except UnidentifiedImageError as exc:
        raise InputError("not an image tbimg can read (PNG, JPEG, GIF, BMP, or a format Pillow reads)") from exc
    except Image.DecompressionBombError as exc:
        raise InputError(f"the image is too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        if isinstance(exc, InputError):
            raise
        kind = getattr(image, "format", None) or "image"
        raise InputError(f"the {kind} file is damaged or cut short ({exc})") from exc
    return _png_samples(_pil_pixels(image), "auto", value_range)[0]
