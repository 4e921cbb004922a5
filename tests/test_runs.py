"""Run directories: timestamped, never reused, nothing left behind on failure."""

from __future__ import annotations

import re

import pytest

from tbimg_cli.errors import RunDirError
from tbimg_cli.runs import new_run_dir


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
