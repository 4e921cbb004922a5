"""`tbimg log`'s steps: decided for each file from its own path, grouped by (tag, step) whatever the order,
ambiguous names refused with the way out, `--steps-from folder`, `--step-pattern`, and a Ctrl-C that never
makes a rerun log a file twice."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from tbimg_cli.images.steps import StepRefused, StepRule, compile_pattern

from .helpers import event_files, wait_until
from .test_file_sources import logged, save, summaries, watched


@pytest.mark.parametrize(
    ("name", "step"),
    [
        ("epoch_012.png", 12),
        ("iter5000_rank0.png", 5000),
        ("resnet50_epoch3.png", 3),
        ("step-12_sample7.png", 12),
        ("real_001.png", 1),
        ("0042.png", 42),
        ("cat.png", 0),  # no number: step 0 (auto)
        ("timestep_5.png", 5),  # `step` inside a word is no step word, but the only number
    ],
)
def test_the_step_a_name_states(name, step):
    assert StepRule().place(name, "root") == ((), step)


@pytest.mark.parametrize("name", ["img_0.5.png", "2024-01-02_12-00-00.png", "a_3_7.png", "epoch_1_step_20.png"])
def test_a_name_with_more_than_one_reading_is_refused_with_the_way_out(name):
    with pytest.raises(StepRefused, match="--step-pattern REGEX"):
        StepRule().place(name, "root")


def test_folder_and_pattern_steps_leave_the_step_folder_out_of_the_tag():
    assert StepRule("folder").place("epoch_3/sample_0.png", "a") == ((), 3)
    assert StepRule("folder").place("real/epoch_3/x.png", "a") == (("real",), 3)
    assert StepRule("folder").place("x.png", "epoch_4") == ((), 4)  # the folder given is the step's
    pattern = StepRule("pattern", pattern=compile_pattern(r"ckpt-(\d+)/"))
    assert pattern.place("ckpt-200/val/x_3.png", "a") == (("val",), 200)
    with pytest.raises(StepRefused, match="does not match"):
        pattern.place("final/x.png", "a")


def test_watching_an_empty_folder_gives_each_new_file_its_own_step(tmp_path):
    folder, run = tmp_path / "w", tmp_path / "r"
    folder.mkdir()

    def save_epochs() -> None:
        time.sleep(1.5)  # the first pass has found nothing
        for epoch in range(1, 6):
            save(folder / f"epoch_{epoch:03d}.png", epoch)

    watched(folder, run, tmp_path, save_epochs, lambda: len(summaries(run).get("w", [])) == 5)
    assert [step for step, _ in summaries(run)["w"]] == [1, 2, 3, 4, 5]


def test_files_of_one_tag_and_step_are_one_summary_wherever_they_sort(cli, tmp_path):
    for step in (1, 2):
        save(tmp_path / "gan" / f"real_{step:03d}.png", step)
        save(tmp_path / "gan" / f"fake_{step:03d}.png", 10 + step)
        for rank in (0, 1):
            save(tmp_path / "ddp" / f"iter{step}000_rank{rank}.png", rank)
    _, run = logged(cli, tmp_path / "gan", tmp_path / "ddp", "--logdir", tmp_path / "logs")
    found = summaries(run)
    assert [(step, len(blobs)) for step, blobs in found["gan"]] == [(1, 2), (2, 2)]
    assert [(step, len(blobs)) for step, blobs in found["ddp"]] == [(1000, 2), (2000, 2)]


def test_a_glob_over_several_folders_with_a_tag_is_one_summary_per_step(cli, tmp_path):
    for experiment in ("a", "b", "c"):
        for epoch in (1, 2):
            save(tmp_path / "runs" / experiment / "samples" / f"epoch_{epoch}.png", epoch)
    pattern = str(tmp_path / "runs" / "*" / "samples" / "*.png")
    _, run = logged(cli, pattern, "--tag", "all", "--logdir", tmp_path / "logs")
    assert [(step, len(blobs)) for step, blobs in summaries(run)["all"]] == [(1, 3), (2, 3)]
    _, run = logged(cli, pattern, "--logdir", tmp_path / "logs")  # no --tag: one tag per folder, told apart
    assert sorted(summaries(run)) == ["a/samples", "b/samples", "c/samples"]


def test_two_folders_of_one_name_do_not_merge_into_one_tag(cli, tmp_path):
    one, two = (
        save(tmp_path / "exp1" / "samples" / "epoch_1.png", 1),
        save(tmp_path / "exp2" / "samples" / "epoch_1.png", 2),
    )
    save(tmp_path / "exp1" / "other" / "epoch_1.png", 3)
    args = (tmp_path / "exp1" / "samples", tmp_path / "exp2" / "samples", tmp_path / "exp1" / "other")
    payload, run = logged(cli, *args, "--logdir", tmp_path / "logs")
    assert sorted(payload["tags"]) == ["exp1/samples", "exp2/samples", "other"]
    found = summaries(run)
    assert found["exp1/samples"] == [(1, [one])] and found["exp2/samples"] == [(1, [two])]


def test_steps_from_folder_names_and_a_step_pattern(cli, tmp_path):
    for epoch in (1, 2):
        for sample in range(3):
            save(tmp_path / "a" / f"epoch_{epoch}" / f"sample_{sample}.png", epoch * 10 + sample)
    _, run = logged(cli, tmp_path / "a", "--logdir", tmp_path / "logs")  # the default: a tag per folder
    assert sorted(summaries(run)) == ["a/epoch_1", "a/epoch_2"]
    payload, run = logged(cli, tmp_path / "a", "--steps-from", "folder", "--logdir", tmp_path / "logs")
    assert payload["tags"] == ["a"] and [(s, len(b)) for s, b in summaries(run)["a"]] == [(1, 3), (2, 3)]
    _, run = logged(cli, tmp_path / "a", "--step-pattern", r"epoch_(\d+)/", "--logdir", tmp_path / "logs")
    assert [(s, len(b)) for s, b in summaries(run)["a"]] == [(1, 3), (2, 3)]
    glob = str(tmp_path / "a" / "epoch_*" / "*.png")
    _, run = logged(cli, glob, "--steps-from", "folder", "--logdir", tmp_path / "logs")
    assert [(s, len(b)) for s, b in summaries(run)["a"]] == [(1, 3), (2, 3)]


def test_ambiguous_numbers_are_refused_in_one_line_with_the_way_out(cli, tmp_path):
    for name in ("img_0.5.png", "img_0.25.png", "2024-01-02_12-00-00.png"):
        save(tmp_path / "odd" / name)
    result = cli("log", tmp_path / "odd", "--logdir", tmp_path / "logs", "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["images"] == 0 and len(payload["problems"]) == 3
    assert all("--step-pattern REGEX" in problem["message"] for problem in payload["problems"])
    payload, run = logged(cli, tmp_path / "odd", "--steps-from", "order", "--logdir", tmp_path / "logs")
    assert payload["problems"] == [] and [step for step, _ in summaries(run)["odd"]] == [0, 1, 2]


def test_many_files_refused_for_one_reason_are_counted_not_listed(cli, tmp_path):
    for minute in range(12):
        save(tmp_path / "shots" / f"2024-01-02_12-{minute:02d}-00.png")
    result = cli("log", tmp_path / "shots", "--logdir", tmp_path / "logs")
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(lines) == 4, result.stderr
    assert "and 9 more files for the same reason" in lines[-1]


@pytest.mark.slow
def test_ctrl_c_never_makes_a_rerun_log_a_summary_twice(tmp_path):
    """Stopped at random moments, then run again until done: every file is in the run exactly once."""
    folder, run = tmp_path / "many", tmp_path / "run"
    for index in range(120):  # large files: the time between a record's write and its listing is what counts
        save(folder / f"frame_{index:04d}.png", index, size=(512, 512))
    command = [sys.executable, "-m", "tbimg_cli", "log", str(folder), "--run-dir", str(run), "--json"]
    chance = random.Random(5)
    interrupted = 0
    for _ in range(10):
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda p=proc: p.poll() is not None or event_files(run), timeout=60, what="writing to start")
        time.sleep(chance.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        interrupted += proc.returncode != 0
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    steps = [step for step, _ in summaries(run)["many"]]
    assert interrupted > 0 and sorted(steps) == list(range(120)), (interrupted, len(steps))
