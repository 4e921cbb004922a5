"""Fashion-MNIST from the four official IDX files, read with numpy and gzip.

Never through TensorFlow: reading the files ourselves costs milliseconds where
`keras.datasets` costs a 3 s TensorFlow import. The files are looked for, in
order, in an explicit data directory, then in the Keras cache that
`keras.datasets.fashion_mnist.load_data()` fills (so anyone who ran the
tutorial already has them), and are otherwise downloaded into that cache.

Reads are lazy and split-local: `single --index 0` decompresses one image, and
asking for the test set never touches the training files.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tbimg_cli.errors import DataError, InputError

if TYPE_CHECKING:  # urllib is only imported when a download is needed
    from tbimg_cli.download import BytesCallback

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SPLITS = ("train", "test")
IMAGE_SIDE = 28

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
ALL_FILES = tuple(name for pair in SPLIT_FILES.values() for name in pair)
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# IDX magic numbers: 0x08 = unsigned byte, last byte = number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def keras_cache_dir() -> Path:
    """Where Keras's `fashion_mnist.load_data()` keeps the files.

    Keras uses $KERAS_HOME, else ~/.keras, and falls back to /tmp/.keras when
    the home directory is not writable; we follow the same rule so both tools
    share one copy.
    """
    home = os.environ.get("KERAS_HOME")
    if home:
        base = Path(home).expanduser()
    else:
        base = Path("~/.keras").expanduser()
        if not os.access(base if base.exists() else base.parent, os.W_OK):
            base = Path("/tmp/.keras")
    return base / "datasets" / "fashion-mnist"


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}: use 'train' or 'test'")
    return split


@dataclass(frozen=True)
class SplitFiles:
    """The image and label files of one split, opened lazily."""

    split: str
    images_path: Path
    labels_path: Path

    def labels(self) -> "np.ndarray":  # noqa: F821 - numpy is imported lazily
        """All labels of the split (a few KB; always read whole)."""
        import numpy as np

        count, body = _read_idx(self.labels_path, LABELS_MAGIC, (), None)
        labels = np.frombuffer(body, dtype=np.uint8)
        if labels.size and labels.max() >= len(CLASS_NAMES):
            raise DataError(f"{self.labels_path}: label {labels.max()} is not a Fashion-MNIST class (0-9)")
        return labels

    def count(self) -> int:
        """Number of images in the split, from the label file's header alone."""
        return _header_count(self.labels_path, LABELS_MAGIC, ())

    def images(self, stop: int | None = None) -> "np.ndarray":  # noqa: F821
        """Images [0, stop) as uint8 (N, 28, 28); decompresses only that much."""
        import numpy as np

        expected = self.count()
        count, body = _read_idx(self.images_path, IMAGES_MAGIC, (IMAGE_SIDE, IMAGE_SIDE), stop)
        if count != expected:
            raise DataError(
                f"{self.images_path.name} holds {count} images but {self.labels_path.name} "
                f"holds {expected} labels: the files do not belong together"
            )
        return np.frombuffer(body, dtype=np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def locate(
    split: str, data_dir: str | Path | None = None, offline: bool = False, on_download: BytesCallback | None = None
) -> SplitFiles:
    """Find (or fetch) the two files of `split`.

    An explicit `data_dir` is the only place looked: silently using another
    copy would hide a typo. Without it, the Keras cache, then a download,
    reported through `on_download(file name, bytes received, total)`.
    """
    names = SPLIT_FILES[check_split(split)]
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data directory {folder} does not exist")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise DataError(
                f"data directory {folder} has no {', '.join(missing)}: "
                f"put the four Fashion-MNIST files there ({', '.join(ALL_FILES)})"
            )
        return SplitFiles(split, folder / names[0], folder / names[1])

    cache = keras_cache_dir()
    missing = [n for n in names if not (cache / n).is_file()]
    if missing and offline:
        raise DataError(
            f"Fashion-MNIST file(s) {', '.join(missing)} not found in the Keras cache {cache} "
            f"and --offline forbids downloading; pass --data-dir DIR (or set TBIMG_DATA_DIR) "
            f"to a folder holding {', '.join(ALL_FILES)}, or run without --offline"
        )
    if missing:
        from tbimg_cli.download import download_files

        download_files({name: OFFICIAL_MD5[name] for name in missing}, cache, on_download)
    return SplitFiles(split, cache / names[0], cache / names[1])


def load(
    split: str,
    data_dir: str | Path | None = None,
    offline: bool = False,
    stop: int | None = None,
    on_download: BytesCallback | None = None,
):
    """(images, labels) of a split; images only up to `stop` when given."""
    files = locate(split, data_dir, offline, on_download)
    labels = files.labels()
    images = files.images(stop)
    return images, labels[: len(images)]


def _header_count(path: Path, magic: int, dims: tuple[int, ...]) -> int:
    count, stream = _open_idx(path, magic, dims)
    stream.close()
    return count


def _open_idx(path: Path, magic: int, dims: tuple[int, ...]):
    """Open an IDX file and check its header: magic number and item dimensions."""
    header_len = 4 * (2 + len(dims))
    stream = gzip.open(path, "rb")
    try:
        header = stream.read(header_len)
        if len(header) < header_len:
            raise DataError(f"{path}: file ends inside the IDX header (truncated download?)")
        found_magic, count, *found_dims = struct.unpack(f">{2 + len(dims)}I", header)
        if found_magic != magic:
            raise DataError(
                f"{path}: IDX magic number is {found_magic:#010x}, expected {magic:#010x}: "
                "not a Fashion-MNIST "
                + ("image" if dims else "label")
                + " file"
            )
        if tuple(found_dims) != dims:
            raise DataError(f"{path}: images are {'x'.join(map(str, found_dims))}, expected 28x28")
    except BaseException as exc:
        stream.close()
        raise _as_data_error(path, exc) from exc
    return count, stream


def _read_idx(path: Path, magic: int, dims: tuple[int, ...], stop: int | None) -> tuple[int, bytes]:
    count, stream = _open_idx(path, magic, dims)
    item = 1
    for d in dims:
        item *= d
    wanted = count if stop is None else min(stop, count)
    try:
        with stream:
            body = stream.read(wanted * item)
    except BaseException as exc:
        raise _as_data_error(path, exc) from exc
    if len(body) < wanted * item:
        raise DataError(
            f"{path}: file is truncated: header promises {count} items but the data stops "
            f"after {len(body) // item}; delete it and download it again"
        )
    return count, body


def _as_data_error(path: Path, exc: BaseException) -> BaseException:
    """Turn gzip/zlib failures into one line that says what to do."""
    if isinstance(exc, DataError | KeyboardInterrupt):
        return exc
    if isinstance(exc, EOFError):
        return DataError(f"{path}: gzip stream is truncated; delete the file and download it again")
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return DataError(f"{path}: not a valid gzip file ({exc}); replace it with the official file")
    if isinstance(exc, OSError):
        return DataError(f"{path}: cannot read ({exc.strerror or exc})")
    return exc
