"""The commands end to end through Typer's runner, read back with TensorBoard's reader."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tbimg_cli import __version__
from tbimg_cli.tutorial.data import CLASS_NAMES

from .helpers import SUBSET_TEST, SUBSET_TRAIN, decode_png, heavy_modules_after, load_run, run_module

COMMANDS = ["single", "grid", "plot", "train-cm", "inspect", "export"]


def test_help_lists_every_command_with_an_example(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout
        assert re.search(rf"tbimg {command}\b", result.stdout), command


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_has_an_example(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert f"Example: tbimg {command}" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_the_app_of_the_invoked_command_alone_answers_as_the_whole_app(command):
    """`main` builds only the command it is given; its help and its refusals are the whole app's."""
    import typer.main

    from tbimg_cli.cli.app import app, invoked_only

    alone = invoked_only([command, "--help"])
    assert alone is not app and list(typer.main.get_command(alone).commands) == [command]
    runner = CliRunner()
    for args in ([command, "--help"], [command, "--no-such-option"], [command, "--json", "--port", "x"]):
        whole, single = runner.invoke(app, args), runner.invoke(alone, args)
        assert (single.exit_code, single.output) == (whole.exit_code, whole.output), args


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["grd"], ["--verbose", "grid"]])
def test_anything_but_a_command_first_gets_the_whole_app(args):
    from tbimg_cli.cli.app import app, invoked_only

    assert invoked_only(args) is app


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"tbimg {__version__}"


@pytest.mark.parametrize("args", [["--help"], ["single", "--help"], ["train-cm", "--help"]])
def test_help_imports_nothing_heavy(args):
    heavy, proc = heavy_modules_after(args)
    assert proc.returncode == 0, proc.stderr
    assert heavy == []


def test_the_command_line_starts_without_numpy():
    """numpy's import is 40 ms of every command's start; `--help` and `--version` need none of it."""
    probe = "import sys\nfrom tbimg_cli.cli import app\nprint('numpy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@pytest.mark.parametrize("args", [["single", "--index", "5"], ["grid", "--count", "25"]])
def test_single_and_grid_import_no_tensorflow_keras_or_matplotlib(tmp_path, data_dir, args):
    heavy, proc = heavy_modules_after([*args, "--data-dir", str(data_dir), "--logdir", str(tmp_path)])
    assert "Wrote" in proc.stdout, proc.stderr
    assert heavy == []


def test_python_dash_m_runs_the_cli():
    proc = run_module("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"tbimg {__version__}"


def test_the_script_keeps_exit_codes_output_and_exit_handlers(tmp_path, data_dir):
    """`main` ends the process without the interpreter's teardown; nothing the user sees may change."""
    assert run_module("single", "--no-such-option").returncode == 2
    missing = run_module("single", "--index", "99999", "--data-dir", data_dir)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: --index 99999")
    written = run_module("grid", "--count", "3", "--data-dir", data_dir, "--logdir", tmp_path / "logs", "--json")
    assert written.returncode == 0 and len(json.loads(written.stdout)["classes"]) == 3  # all of stdout arrived
    probe = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(pathlib.Path({str(tmp_path / 'handler-ran')!r}).touch)\n"
        "sys.argv = ['tbimg', '--version']\n"
        "from tbimg_cli.cli import main\n"
        "main()\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == f"tbimg {__version__}\n"
    assert (tmp_path / "handler-ran").exists()


def _read_images(run_dir, tag):
    (event,) = load_run(run_dir).Tensors(tag)
    values = event.tensor_proto.string_val
    return event, [decode_png(png) for png in values[2:]]


def test_single_writes_the_dataset_image(cli, data_dir, test_split):
    out = cli.json("single", "--index", "7", "--split", "test", "--data-dir", data_dir)
    run_dir = Path(out["run_dir"])
    assert run_dir.parent == Path("logs") / "test_data" and re.fullmatch(r"\d{8}-\d{6}", run_dir.name)
    assert out["tags"] == ["Test data"] and out["images"] == 1 and out["shape"] == [1, 28, 28, 1]
    event, (image,) = _read_images(run_dir, "Test data")
    assert event.step == 0
    assert np.array_equal(image, test_split[0][7])
    description = load_run(run_dir).SummaryMetadata("Test data").summary_description
    assert "test" in description and "#7" in description and CLASS_NAMES[test_split[1][7]] in description


def test_single_default_is_the_tutorial_first_training_image(cli, data_dir):
    result = cli("single", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert "Ankle boot" in result.stdout
    assert "tensorboard --logdir logs" in result.stdout
    (run_dir,) = (Path("logs") / "train_data").iterdir()
    assert load_run(run_dir).Tags()["tensors"] == ["Training data"]


def test_grid_writes_count_samples_in_one_summary(cli, data_dir, test_split):
    out = cli.json("grid", "--count", "25", "--start", "100", "--split", "test", "--data-dir", data_dir)
    assert out["tags"] == ["25 test data examples"] and out["images"] == 25
    event, images = _read_images(out["run_dir"], "25 test data examples")
    assert event.tensor_proto.string_val[:2] == [b"28", b"28"]
    assert np.array_equal(np.stack(images), test_split[0][100:125])
    description = load_run(out["run_dir"]).SummaryMetadata("25 test data examples").summary_description
    assert "Classes shown" in description


def test_grid_of_one_class(cli, data_dir, test_split):
    out = cli.json("grid", "--count", "12", "--class", "sneaker", "--split", "test", "--data-dir", data_dir)
    assert set(out["classes"]) == {"Sneaker"}
    expected = np.flatnonzero(test_split[1] == 7)[:12]
    _, images = _read_images(out["run_dir"], "12 test data examples")
    assert np.array_equal(np.stack(images), test_split[0][expected])
    by_id = cli.json("grid", "--count", "12", "--class", "7", "--split", "test", "--data-dir", data_dir)
    assert by_id["classes"] == out["classes"]


def test_json_output_is_one_object_and_nothing_else(cli, data_dir):
    result = cli("grid", "--count", "3", "--data-dir", data_dir, "--json")
    assert result.exit_code == 0
    parsed = json.loads(result.stdout)
    assert set(parsed) >= {"run_dir", "tags", "images", "shape"}


def test_run_name_and_logdir(cli, data_dir, tmp_path):
    out = cli.json("single", "--data-dir", data_dir, "--logdir", tmp_path / "elsewhere", "--run-name", "first")
    assert Path(out["run_dir"]) == tmp_path / "elsewhere" / "train_data" / "first"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["single", "--index", str(SUBSET_TRAIN)], f"use 0 to {SUBSET_TRAIN - 1}"),
        (["single", "--index", str(SUBSET_TEST), "--split", "test"], f"use 0 to {SUBSET_TEST - 1}"),
        (["single", "--index", "-1"], f"use 0 to {SUBSET_TRAIN - 1}"),
        (["grid", "--count", "0"], "at least 1"),
        (["grid", "--count", "11", "--start", str(SUBSET_TEST - 10), "--split", "test"], "more than the 10 images"),
        (["grid", "--count", str(SUBSET_TEST), "--class", "Bag", "--split", "test"], "Bag images of the test split"),
        (["grid", "--class", "Hat"], "unknown class 'Hat'"),
        (["grid", "--class", "10"], "0=T-shirt/top"),
        (["single", "--run-name", "../x"], "single plain folder name"),
        (["single", "--run-name", "/abs"], "single plain folder name"),
        (["single", "--run-name", ""], "single plain folder name"),
        (["grid", "--logdir", "a-file/logs"], "is a file"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, data_dir, args, message):
    Path("a-file").write_text("")
    result = cli(*args, "--data-dir", data_dir)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert result.stderr.startswith("Error:") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not Path("logs").exists() and not Path("a-file/logs").exists()


def test_existing_run_name_is_refused(cli, data_dir):
    assert cli("single", "--run-name", "r", "--data-dir", data_dir).exit_code == 0
    result = cli("single", "--run-name", "r", "--data-dir", data_dir)
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert len(list((Path("logs") / "train_data" / "r").glob("*tfevents*"))) == 1  # the refused run wrote nothing


def test_unknown_split_is_a_usage_error(cli, data_dir):
    result = cli("single", "--split", "validation", "--data-dir", data_dir)
    assert result.exit_code == 2 and "validation" in result.output


def test_the_last_image_of_the_full_dataset(cli, full_data_dir):
    out = cli.json("single", "--index", "59999", "--data-dir", full_data_dir)
    assert out["images"] == 1
    result = cli("single", "--index", "60000", "--data-dir", full_data_dir)
    assert result.exit_code == 1 and "use 0 to 59999" in result.stderr
    result = cli("grid", "--count", "11", "--start", "9990", "--split", "test", "--data-dir", full_data_dir)
    assert result.exit_code == 1 and "more than the 10 images" in result.stderr


def test_plot_says_how_many_images_its_figure_shows(cli, data_dir):
    result = cli("plot", "--count", "9", "--data-dir", data_dir)
    assert "Wrote a figure of 9 train images" in result.stdout


def test_counts_of_one_are_singular(cli, data_dir):
    result = cli("grid", "--count", "3", "--start", str(SUBSET_TEST - 1), "--split", "test", "--data-dir", data_dir)
    assert "more than the 1 image of the test split" in result.stderr
    assert "Wrote 1 train image " in cli("grid", "--count", "1", "--data-dir", data_dir).stdout


def test_help_names_the_logdir_argument_and_shows_no_metavar_for_flags(cli):
    result = cli("inspect", "--help")
    assert "LOGDIR" in result.stdout and "{logdir}" not in result.stdout
    flags = [line for line in cli("single", "--help").stdout.splitlines() if "--offline" in line or "--serve" in line]
    assert flags and not any("<bool>" in line for line in flags)


def test_usage_errors_exit_2_and_mistakes_exit_1(cli, data_dir):
    assert cli("single", "--no-such-option").exit_code == 2
    assert cli("single", "--index", "x").exit_code == 2
    assert cli("single", "--index", "99999", "--data-dir", data_dir).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["single", "--no-such-option"], "No such option: --no-such-option"),
        (["single", "--index", "x"], "Invalid value for '--index'"),
        (["train-cm", "--seed", "-5"], "Invalid value for '--seed'"),
        (["train-cm", "--seed", "4294967296"], "Invalid value for '--seed'"),
        (["single", "--logdir", ""], "Invalid value for '--logdir': must name a folder"),
    ],
)
def test_a_usage_error_is_one_line_exit_2_and_loads_nothing(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.stderr
    assert "--help" in lines[0] and "╭" not in result.stderr
    assert not Path("logs").exists()


def test_seed_out_of_range_fails_before_tensorflow_loads(data_dir):
    heavy, proc = heavy_modules_after(["train-cm", "--seed", "-5", "--data-dir", str(data_dir)])
    assert proc.returncode == 0 and heavy == []  # the probe catches the exit; nothing heavy was imported


def test_multi_worker_without_tf_config_fails_before_tensorflow_loads(data_dir, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    heavy, proc = heavy_modules_after(["train-cm", "--strategy", "multi-worker", "--data-dir", str(data_dir)])
    assert "needs TF_CONFIG" in proc.stderr and heavy == []


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["single", "--index", "99999"], 1),
        (["single", "--index", "x"], 2),
        (["inspect", "no-such-logdir"], 1),
    ],
)
def test_json_failures_are_json_on_stdout_too(cli, data_dir, args, code):
    result = cli(*args, "--data-dir", data_dir, "--json") if args[0] == "single" else cli(*args, "--json")
    assert result.exit_code == code
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == code and payload["error"] in result.stderr


def test_the_test_split_is_logged_under_its_own_name(cli, data_dir):
    out = cli.json("grid", "--count", "4", "--split", "test", "--data-dir", data_dir)
    assert Path(out["run_dir"]).parent == Path("logs") / "test_data"
    assert (
        Path(cli.json("grid", "--count", "4", "--data-dir", data_dir)["run_dir"]).parent == Path("logs") / "train_data"
    )
