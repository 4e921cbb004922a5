"""Fashion-MNIST from the four official IDX files, read with numpy and ISA-L's gzip (zlib's as the fallback).

Never through TensorFlow: reading the files ourselves costs milliseconds where
`keras.datasets` costs a TensorFlow import (bench/README.md has the figures). The files are looked for, in
order, in an explicit data directory, then in the Keras cache that
`keras.datasets.fashion_mnist.load_data()` fills (so anyone who ran the
tutorial already has them), and are otherwise downloaded into that cache.

Every file is checked whole against its MD5 (the official one, or a data
folder's own MD5SUMS) before anything is read from it, once: the result is
remembered. Reads are then lazy and split-local: `single --index 0`
decompresses one image, and asking for the test set never touches the
training files.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import threading
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tbimg_cli.errors import DataError, InputError

if TYPE_CHECKING:  # urllib is only imported when a download is needed, numpy when data is read
    import numpy as np
    from numpy.typing import NDArray

    from tbimg_cli.tutorial.download import BytesCallback

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
MD5SUMS_FILE = "MD5SUMS"  # in a --data-dir, vouches for files other than the official ones
VERIFIED_FILE = "verified-files.json"  # in tbimg's cache folder: files whose MD5 already passed


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
    _ahead: dict[int | None, _ReadAhead] = field(default_factory=dict, compare=False, repr=False)

    def read_ahead(self, stop: int | None = None) -> None:
        """Start inflating images [0, stop) on a thread of its own, for a caller that has other work before it
        wants them (`grid`: importing numpy, 34 ms, while ISA-L's inflate, 18 ms, lets go of the GIL);
        `images(stop)` then takes them, or raises what reading them raised."""
        if stop not in self._ahead:
            self._ahead[stop] = _ReadAhead(self.images_path, stop)

    def labels(self) -> NDArray[np.uint8]:
        """All labels of the split (a few KB; always read whole)."""
        import numpy as np

        _, body = _read_idx(self.labels_path, LABELS_MAGIC, (), None)
        labels = np.frombuffer(body, dtype=np.uint8)
        if labels.size and labels.max() >= len(CLASS_NAMES):
            raise DataError(f"{self.labels_path}: label {labels.max()} is not a Fashion-MNIST class (0-9)")
        return labels

    def count(self) -> int:
        """Number of images in the split, from the two files' headers (which must agree)."""
        labels = _header_count(self.labels_path, LABELS_MAGIC, ())
        images = _header_count(self.images_path, IMAGES_MAGIC, (IMAGE_SIDE, IMAGE_SIDE))
        if images != labels:
            raise DataError(
                f"{self.images_path.name} holds {images} images but {self.labels_path.name} "
                f"holds {labels} labels: the files do not belong together"
            )
        return labels

    def images(self, stop: int | None = None) -> NDArray[np.uint8]:
        """Images [0, stop) as uint8 (N, 28, 28); decompresses only that much."""
        import numpy as np

        self.count()
        ahead = self._ahead.pop(stop, None)
        body = ahead.body() if ahead else _read_idx(self.images_path, IMAGES_MAGIC, (IMAGE_SIDE, IMAGE_SIDE), stop)[1]
        return np.frombuffer(body, dtype=np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


class _ReadAhead:
    """`_read_idx` of an images file on a daemon thread: its body, or its exception, for whoever asks."""

    def __init__(self, path: Path, stop: int | None) -> None:
        self._body: bytes | memoryview = b""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, args=(path, stop), name="tbimg-read-ahead", daemon=True)
        self._thread.start()

    def _read(self, path: Path, stop: int | None) -> None:
        try:
            self._body = _read_idx(path, IMAGES_MAGIC, (IMAGE_SIDE, IMAGE_SIDE), stop)[1]
        except BaseException as exc:  # raised in the thread that asks for the images
            self._error = exc

    def body(self) -> bytes | memoryview:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._body


def locate(
    split: str, data_dir: str | Path | None = None, *, offline: bool = False, on_download: BytesCallback | None = None
) -> SplitFiles:
    """Find (or fetch) the two files of `split`.

    An explicit `data_dir` is the only place looked: silently using another
    copy would hide a typo. Without it, the Keras cache, then a download,
    reported through `on_download(file name, bytes received, total)`.
    """
    names = SPLIT_FILES[check_split(split)]
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if folder.exists() and not folder.is_dir():
            raise DataError(f"--data-dir {folder} is a file: give the folder that holds the four Fashion-MNIST files")
        if not folder.is_dir():
            raise DataError(f"data directory {folder} does not exist")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise DataError(
                f"data directory {folder} has no {', '.join(missing)}: "
                f"put the four Fashion-MNIST files there ({', '.join(ALL_FILES)})"
            )
        sums = _folder_md5sums(folder)
        for name in names:
            verify(folder / name, sums.get(name, OFFICIAL_MD5[name]), "replace it with the official file")
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
        from tbimg_cli.tutorial.download import download_files

        download_files({name: OFFICIAL_MD5[name] for name in missing}, cache, on_download)
    for name in names:
        verify(cache / name, OFFICIAL_MD5[name], "delete it and tbimg downloads it again")
    return SplitFiles(split, cache / names[0], cache / names[1])


def verify(path: Path, expected_md5: str, fix: str) -> None:
    """Refuse a file whose MD5 is not `expected_md5`; remember files that passed.

    A damaged file can still parse (a cut gzip stream yields its first images,
    a wrong CRC is only noticed at the very end), so only a whole-file check
    guarantees that no result is built on it. The check reads the file once;
    after that a record keyed by path, size and modification time, in tbimg's
    cache folder, lets later runs skip it.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns, expected_md5]
    remembered = _load_verified()
    if remembered.get(key) == stamp:
        return
    import hashlib  # here: a file checked before (the common case) needs none of it

    digest = hashlib.md5()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    if digest.hexdigest() != expected_md5:
        raise DataError(
            f"{path} is damaged or not the expected file (MD5 {digest.hexdigest()}, expected {expected_md5}): {fix}"
        )
    remembered[key] = stamp
    _save_verified(remembered)


def tbimg_cache_dir() -> Path:
    """tbimg's own cache folder: $TBIMG_CACHE_DIR, else $XDG_CACHE_HOME/tbimg, else ~/.cache/tbimg."""
    explicit = os.environ.get("TBIMG_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "tbimg"


def _folder_md5sums(folder: Path) -> dict[str, str]:
    """A data folder's own MD5SUMS (as `md5sum` writes it), which vouches for files that are not the official ones."""
    try:
        text = (folder / MD5SUMS_FILE).read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 32:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _load_verified() -> dict:
    try:
        remembered = json.loads((tbimg_cache_dir() / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return remembered if isinstance(remembered, dict) else {}


def _save_verified(remembered: dict) -> None:
    """Best effort: a cache folder that cannot be written only costs the check again next time."""
    folder = tbimg_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{VERIFIED_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps(remembered))
        os.replace(temporary, folder / VERIFIED_FILE)
    except OSError:
        pass


def load(
    split: str,
    data_dir: str | Path | None = None,
    *,
    offline: bool = False,
    stop: int | None = None,
    on_download: BytesCallback | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """(images, labels) of a split; images only up to `stop` when given."""
    files = locate(split, data_dir, offline=offline, on_download=on_download)
    labels = files.labels()
    images = files.images(stop)
    return images, labels[: len(images)]


def _header_count(path: Path, magic: int, dims: tuple[int, ...]) -> int:
    count, stream = _open_idx(path, magic, dims)
    stream.close()
    return count


def _open_idx(path: Path, magic: int, dims: tuple[int, ...]) -> tuple[int, gzip.GzipFile]:
    """Open an IDX file and check its header: magic number and item dimensions."""
    header_len = 4 * (2 + len(dims))
    stream = _gzip().open(path, "rb")  # returned open to the caller, which closes it
    try:
        header = stream.read(header_len)
        if len(header) < header_len:
            raise DataError(f"{path}: file ends inside the IDX header (truncated download?)")
        found_magic, count, *found_dims = struct.unpack(f">{2 + len(dims)}I", header)
        if found_magic != magic:
            raise DataError(
                f"{path}: IDX magic number is {found_magic:#010x}, expected {magic:#010x}: "
                "not a Fashion-MNIST " + ("image" if dims else "label") + " file"
            )
        if tuple(found_dims) != dims:
            raise DataError(f"{path}: images are {'x'.join(map(str, found_dims))}, expected 28x28")
    except BaseException as exc:
        stream.close()
        raise _as_data_error(path, exc) from exc
    return count, stream


def _read_idx(path: Path, magic: int, dims: tuple[int, ...], stop: int | None) -> tuple[int, bytes | memoryview]:
    count, stream = _open_idx(path, magic, dims)
    item = 1
    for d in dims:
        item *= d
    wanted = count if stop is None else min(stop, count)
    body: bytes | memoryview
    try:
        with stream:
            if wanted == count:
                # All of it in one zlib call: faster than the stream's 128 KB steps, and it lets
                # go of the GIL throughout (train-cm reads while TensorFlow imports).
                header = stream.tell()
                body = memoryview(_gzip().decompress(path.read_bytes()))[header : header + wanted * item]
            else:
                body = stream.read(wanted * item)
    except BaseException as exc:
        raise _as_data_error(path, exc) from exc
    if len(body) < wanted * item:
        raise DataError(
            f"{path}: file is truncated: header promises {count} items but the data stops "
            f"after {len(body) // item}; delete it and download it again"
        )
    return count, body


@cache
def _gzip() -> Any:
    """ISA-L's gzip module (`isal`, a dependency) where it imports: the same API and streams as the
    standard library's, 2.3x faster to inflate (the training images: 97 ms instead of 224); else gzip."""
    try:
        from isal import igzip
    except ImportError:
        return gzip
    return igzip


def _as_data_error(path: Path, exc: BaseException) -> BaseException:
    """Turn gzip/zlib failures into one line that says what to do."""
    if isinstance(exc, DataError | KeyboardInterrupt):
        return exc
    if isinstance(exc, EOFError):
        return DataError(f"{path}: gzip stream is truncated; delete the file and download it again")
    if isinstance(exc, gzip.BadGzipFile | zlib.error) or type(exc).__name__ == "IsalError":  # ISA-L's zlib.error
        return DataError(f"{path}: not a valid gzip file ({exc}); replace it with the official file")
    if isinstance(exc, OSError):
        return DataError(f"{path}: cannot read ({exc.strerror or exc})")
    return exc
