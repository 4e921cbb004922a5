"""Make the small, real Fashion-MNIST subset the tests run on, from the official files.

    python scripts/make_test_subset.py --from DIR [--out tests/data/fashion-mnist-subset]

Takes the first 2,000 training and the first 1,000 test images with their
labels and writes them in the official format (gzip'd IDX, same names), plus
an MD5SUMS that vouches for them (tbimg verifies files in a --data-dir against
the official sums or that folder's MD5SUMS) and the dataset's MIT licence.
The output is deterministic: gzip's header carries no time and no file name.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import shutil
import struct
from pathlib import Path

TRAIN_COUNT = 2000
TEST_COUNT = 1000
# (file, IDX header size, bytes per item, how many items to keep)
FILES = [
    ("train-images-idx3-ubyte.gz", 16, 28 * 28, TRAIN_COUNT),
    ("train-labels-idx1-ubyte.gz", 8, 1, TRAIN_COUNT),
    ("t10k-images-idx3-ubyte.gz", 16, 28 * 28, TEST_COUNT),
    ("t10k-labels-idx1-ubyte.gz", 8, 1, TEST_COUNT),
]
LICENCE_NOTE = """Fashion-MNIST subset for tbimg's tests

The first {train} training and first {test} test images of Fashion-MNIST, with their labels,
in the official gzip'd IDX format, made by scripts/make_test_subset.py from the official files.

Fashion-MNIST is by Zalando Research, (c) 2017 Zalando SE, released under the MIT licence
(LICENSE beside this file; https://github.com/zalandoresearch/fashion-mnist).
"""


def subset(source: Path, header_size: int, item_size: int, keep: int) -> bytes:
    with gzip.open(source, "rb") as stream:
        header = bytearray(stream.read(header_size))
        body = stream.read(item_size * keep)
    struct.pack_into(">I", header, 4, keep)  # the item count follows the magic number
    raw = bytes(header) + body
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as out:
        out.write(raw)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="folder with the official files")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "data" / "fashion-mnist-subset"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sums = []
    for name, header_size, item_size, keep in FILES:
        data = subset(args.source / name, header_size, item_size, keep)
        (args.out / name).write_bytes(data)
        sums.append(f"{hashlib.md5(data).hexdigest()}  {name}\n")
    (args.out / "MD5SUMS").write_text("".join(sorted(sums, key=lambda line: line.split()[1])))
    shutil.copyfile(args.source / "LICENSE", args.out / "LICENSE")
    (args.out / "README.md").write_text(LICENCE_NOTE.format(train=TRAIN_COUNT, test=TEST_COUNT))
    print(f"wrote {len(FILES)} files to {args.out}")


if __name__ == "__main__":
    main()
