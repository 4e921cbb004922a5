"""The data layer against the official files, and broken files made on the spot."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct

import numpy as np
import pytest

from tbimg_cli.errors import DataError
from tbimg_cli.tutorial import data

from .helpers import SUBSET_TEST

FIRST_TEST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


def test_class_names_are_the_ten_fashion_mnist_classes():
    # As ../shared/fashion-mnist/README and Zalando's own README list them, in label order.
    first_five = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]
    last_five = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert [*first_five, *last_five] == list(data.CLASS_NAMES)


@pytest.mark.parametrize(("split", "count", "per_class"), [("train", 60000, 6000), ("test", 10000, 1000)])
def test_official_files_load_with_known_shapes_and_balance(full_data_dir, split, count, per_class):
    images, labels = data.load(split, full_data_dir)
    assert images.shape == (count, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (count,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10


def test_known_first_labels(data_dir):
    _, train_labels = data.load("train", data_dir, stop=1)
    _, test_labels = data.load("test", data_dir)
    assert train_labels[0] == 9 and data.CLASS_NAMES[train_labels[0]] == "Ankle boot"
    assert test_labels[:10].tolist() == FIRST_TEST_LABELS


def test_partial_read_equals_the_start_of_a_full_read(data_dir, test_split):
    files = data.locate("test", data_dir)
    first = files.images(stop=3)
    assert first.shape == (3, 28, 28)
    assert np.array_equal(first, test_split[0][:3])
    assert files.count() == SUBSET_TEST


@pytest.mark.parametrize("stop", [3, SUBSET_TEST, None])
def test_images_read_ahead_are_the_images_read_when_asked(data_dir, test_split, stop):
    files = data.locate("test", data_dir)
    files.read_ahead(stop)
    ahead = files.images(stop)
    assert np.array_equal(ahead, test_split[0][: stop or SUBSET_TEST]) and np.array_equal(ahead, files.images(stop))


def test_a_file_read_ahead_raises_its_error_when_the_images_are_asked_for(tmp_path, data_dir):
    folder = _broken_dir(tmp_path, data_dir, "short body")
    files = data.locate("test", folder)
    files.read_ahead(None)  # the thread's error waits for the caller
    with pytest.raises(DataError, match="truncated"):
        files.images(None)


def test_test_split_never_opens_training_files(tmp_path, data_dir):
    for name in data.SPLIT_FILES["test"]:
        shutil.copy(data_dir / name, tmp_path / name)
    shutil.copy(data_dir / "MD5SUMS", tmp_path)
    images, labels = data.load("test", tmp_path)  # the training files are not even there
    assert len(images) == len(labels) == SUBSET_TEST


def test_keras_cache_is_found(tmp_path, monkeypatch, full_data_dir):
    cache = tmp_path / "kh" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in data.SPLIT_FILES["test"]:
        (cache / name).symlink_to(full_data_dir / name)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert data.keras_cache_dir() == cache
    files = data.locate("test", offline=True)
    assert files.images_path == cache / "t10k-images-idx3-ubyte.gz"
    assert files.labels()[:10].tolist() == FIRST_TEST_LABELS


def _write_idx(path, magic, dims, body: bytes, compress=True):
    raw = struct.pack(f">{1 + len(dims)}I", magic, *dims) + body
    path.write_bytes(gzip.compress(raw) if compress else raw)


def _vouch(folder):
    """An MD5SUMS for the folder's files, as a user with files of their own writes it (`md5sum * > MD5SUMS`)."""
    lines = [f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(folder.glob("*.gz"))]
    (folder / "MD5SUMS").write_text("\n".join(lines) + "\n")


def _broken_dir(tmp_path, data_dir, breakage: str, vouched: bool = True):
    """A data folder whose test images are broken in one way; its MD5SUMS vouches for them, so parsing is tested."""
    folder = tmp_path / "broken"
    folder.mkdir()
    shutil.copy(data_dir / "t10k-labels-idx1-ubyte.gz", folder)
    images = folder / "t10k-images-idx3-ubyte.gz"
    n = SUBSET_TEST
    if breakage == "truncated gzip":
        whole = (data_dir / images.name).read_bytes()
        images.write_bytes(whole[: len(whole) // 2])
    elif breakage == "wrong magic":
        _write_idx(images, 0x00000801, (n, 28, 28), bytes(10))
    elif breakage == "wrong dimension":
        _write_idx(images, 0x00000803, (n, 32, 32), bytes(32 * 32 * n))
    elif breakage == "wrong counts":
        _write_idx(images, 0x00000803, (n - 100, 28, 28), bytes(28 * 28 * (n - 100)))
    elif breakage == "short body":
        _write_idx(images, 0x00000803, (n, 28, 28), bytes(28 * 28 * 10))
    elif breakage == "garbage":
        images.write_bytes(b"this is not a gzip file at all" * 100)
    elif breakage == "gzip crc":
        whole = bytearray((data_dir / images.name).read_bytes())
        whole[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
        images.write_bytes(bytes(whole))
    if vouched:
        _vouch(folder)
    return folder


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("truncated gzip", "truncated"),
        ("wrong magic", "magic number"),
        ("wrong dimension", "expected 28x28"),
        ("wrong counts", "do not belong together"),
        ("short body", "truncated"),
        ("garbage", "not a valid gzip file"),
    ],
)
def test_broken_files_give_one_line_errors(tmp_path, data_dir, cli, breakage, message):
    folder = _broken_dir(tmp_path, data_dir, breakage)
    result = cli("grid", "--split", "test", "--count", SUBSET_TEST, "--data-dir", folder)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()  # nothing written, not even an empty run


@pytest.mark.parametrize("breakage", ["truncated gzip", "gzip crc", "wrong counts"])
@pytest.mark.parametrize("command", [["single", "--index", "0"], ["grid", "--count", str(SUBSET_TEST)]])
def test_a_damaged_file_never_yields_a_result(tmp_path, data_dir, cli, breakage, command):
    """Half a gzip stream still parses its first images, and a bad gzip CRC shows only at the end:
    the MD5 catches both."""
    folder = _broken_dir(tmp_path, data_dir, breakage, vouched=False)
    shutil.copy(data_dir / "MD5SUMS", folder)  # the subset's sums: the damaged file no longer matches
    result = cli(*command, "--split", "test", "--data-dir", folder)
    assert result.exit_code == 1, result.output
    assert "t10k-images-idx3-ubyte.gz is damaged" in result.stderr and "MD5" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()


def test_files_that_are_not_the_official_ones_are_refused_without_an_md5sums(tmp_path, data_dir, cli):
    for name in data.SPLIT_FILES["test"]:
        shutil.copy(data_dir / name, tmp_path / name)  # the subset, with no MD5SUMS to vouch for it
    result = cli("single", "--split", "test", "--data-dir", tmp_path)
    assert result.exit_code == 1 and "expected bef4ecab320f06d8554ea6380940ec79" in result.stderr
    assert "replace it with the official file" in result.stderr


def test_a_verified_file_is_not_read_again(tmp_path, data_dir, cli, monkeypatch):
    folder = tmp_path / "copy"
    shutil.copytree(data_dir, folder)
    assert cli("single", "--split", "test", "--data-dir", folder).exit_code == 0
    remembered = json.loads((tmp_path / "tbimg-cache" / "verified-files.json").read_text())
    assert str((folder / "t10k-images-idx3-ubyte.gz").resolve()) in remembered
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    data.locate("test", folder)
    assert not [p for p in opened if p.endswith(".gz")]  # neither file was hashed again
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-10])  # changed since: checked again, and refused
    result = cli("single", "--split", "test", "--data-dir", folder)
    assert result.exit_code == 1 and "is damaged" in result.stderr


def test_data_dir_that_is_a_file_says_so(tmp_path, cli):
    (tmp_path / "f").write_text("")
    result = cli("single", "--data-dir", tmp_path / "f")
    assert result.exit_code == 1 and "is a file" in result.stderr


def test_fewer_labels_than_images_is_named_by_every_command(tmp_path, data_dir, cli):
    folder = _broken_dir(tmp_path, data_dir, "wrong counts")
    for command in (["single"], ["grid", "--count", "5"], ["plot"]):
        result = cli(*command, "--split", "test", "--data-dir", folder)
        assert result.exit_code == 1 and "do not belong together" in result.stderr, command


def test_broken_file_raises_data_error_from_the_library(tmp_path, data_dir):
    folder = _broken_dir(tmp_path, data_dir, "wrong magic")
    with pytest.raises(DataError, match="magic number"):
        data.load("test", folder)


def test_missing_data_dir_is_named(tmp_path, cli):
    result = cli("single", "--data-dir", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "nowhere does not exist" in result.stderr


def test_data_dir_without_the_files_lists_them(tmp_path, cli):
    result = cli("single", "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert "train-images-idx3-ubyte.gz" in result.stderr and "Traceback" not in result.output


def test_missing_files_offline_name_every_place_looked(cli):
    result = cli("single", "--offline")
    assert result.exit_code == 1
    message = result.stderr
    assert "Keras cache" in message and "keras-home" in message.replace("\n", "")
    assert "--data-dir" in message and "TBIMG_DATA_DIR" in message
    assert len(message.strip().splitlines()) == 1


def test_data_dir_from_the_environment(monkeypatch, data_dir, cli):
    monkeypatch.setenv("TBIMG_DATA_DIR", str(data_dir))
    result = cli("single", "--index", "0", "--json")
    assert result.exit_code == 0, result.output
