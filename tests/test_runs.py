"""Run directories: timestamped, never reused, nothing left behind on failure."""

from __future__ import annotations

import contextlib
import re
import subprocess
from pathlib import Path

import pytest

from tbimg_cli.errors import RunDirError
from tbimg_cli.events.runs import new_run_dir

from .helpers import heavy_modules_after


def test_timestamped_and_collision_safe(tmp_path):
    made = []
    for _ in range(3):  # all within the same second
        with new_run_dir(tmp_path / "logs", "train_data") as run_dir:
            made.append(run_dir)
    assert len(set(made)) == 3
    assert re.fullmatch(r"\d{8}-\d{6}", made[0].name)
    assert made[1].name.startswith(made[0].name) and all(p.parent == tmp_path / "logs" / "train_data" for p in made)


def test_named_run_is_never_reused(tmp_path):
    with new_run_dir(tmp_path, "plots", "mine") as run_dir:
        (run_dir / "x").write_text("keep")
    with pytest.raises(RunDirError, match="already exists"), new_run_dir(tmp_path, "plots", "mine"):
        pass
    assert (tmp_path / "plots" / "mine" / "x").read_text() == "keep"


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "/abs", "a/b", "a\\b"])
def test_run_name_must_be_one_plain_component(tmp_path, name):
    with pytest.raises(RunDirError, match="single plain folder name"), new_run_dir(tmp_path, "plots", name):
        pass
    assert list(tmp_path.iterdir()) == []


def test_failure_before_writing_leaves_no_empty_folders(tmp_path):
    with pytest.raises(ValueError), new_run_dir(tmp_path / "new" / "logs", "train_data"):
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_failure_after_writing_keeps_what_was_written(tmp_path):
    with pytest.raises(KeyboardInterrupt), new_run_dir(tmp_path, "image", "r") as run_dir:
        (run_dir / "events").write_text("x")
        raise KeyboardInterrupt
    assert (tmp_path / "image" / "r" / "events").exists()


def test_logdir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "logs").write_text("")
    with pytest.raises(RunDirError, match="is a file"), new_run_dir(tmp_path / "logs", "plots"):
        pass


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 300, "300 bytes long"),
        ("é" * 130, "260 bytes long"),
        ("two\nlines", "control character"),
        ("tab\there", "control character"),
        ("bell\x07", "control character"),
        ("   ", "white space"),
        (" lead", "white space"),
        ("trail ", "white space"),
    ],
)
def test_names_that_would_mislead_or_fail_are_refused_before_any_folder_exists(cli, data_dir, name, message):
    result = cli("single", "--run-name", name, "--data-dir", data_dir)
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert "--logdir" not in result.stderr  # the name is at fault, not the logdir
    assert not Path("logs").exists()


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs, filled to the last byte: folders can still be made, files cannot grow."""
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        with open(mount / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"x" * 4096)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize(
    "command",
    [
        ["single"],
        ["grid", "--count", "50"],
        ["plot"],
        pytest.param(["train-cm", "--epochs", "1", "--limit-train", "500"], marks=pytest.mark.slow),
    ],
)
def test_a_full_disk_is_one_line_and_leaves_nothing(cli, data_dir, full_disk, command):
    result = cli(*command, "--data-dir", data_dir, "--logdir", full_disk / "logs")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: no space left on") and len(result.stderr.strip().splitlines()) == 1
    assert "unexpected" not in result.stderr
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no run folder, no partial event file


def test_train_cm_checks_the_logdir_before_importing_tensorflow(tmp_path, data_dir):
    (tmp_path / "a-file").write_text("")
    heavy, proc = heavy_modules_after(
        ["train-cm", "--data-dir", str(data_dir), "--logdir", str(tmp_path / "a-file" / "logs")]
    )
    assert proc.returncode == 0 and "is a file" in proc.stderr  # (the probe turns the exit into a printed line)
    assert "tensorflow" not in heavy and "keras" not in heavy
