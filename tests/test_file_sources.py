"""`tbimg log`: files, folders, globs, arrays and stdin into TensorBoard; bad input; `--watch`; a real TensorBoard."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tbimg_cli.images.finding import natural_key
from tbimg_cli.images.sources import SOURCES_PREFIX

from .helpers import Served, event_files, free_port, load_run, wait_until
from .test_image_values import bomb_png

RNG = np.random.default_rng(11)


def picture(seed: int, size=(24, 32)) -> np.ndarray:
    return (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)


def save(path: Path, seed: int = 0, fmt: str | None = None, size=(24, 32)) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(picture(seed, size)).save(buffer, fmt or Image.registered_extensions()[path.suffix.lower()])
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def summaries(run_dir: Path) -> dict[str, list[tuple[int, list[bytes]]]]:
    """Each image tag's (step, sample bytes) in file order, read back by TensorBoard's own loader."""
    run = load_run(run_dir)
    return {
        tag: [(event.step, list(event.tensor_proto.string_val[2:])) for event in run.Tensors(tag)]
        for tag in run.Tags()["tensors"]
    }


def logged(cli, *args) -> tuple[dict, Path]:
    result = cli("log", *args, "--json")
    payload = json.loads(result.stdout)
    return payload, Path(payload["run_dir"])


def test_a_folder_of_per_epoch_images_is_a_step_series(cli, tmp_path):
    samples = tmp_path / "samples"
    files = {epoch: save(samples / f"epoch_{epoch:03d}.png", epoch) for epoch in (1, 2, 10)}
    jpeg = save(samples / "val" / "epoch_2.jpg", 5)
    (samples / "notes.txt").write_text("not an image: skipped")
    payload, run = logged(cli, samples, "--logdir", tmp_path / "logs")
    assert payload["problems"] == [] and payload["images"] == 4 and payload["steps"] == [1, 10]
    assert run.parent == tmp_path / "logs" / "images"
    found = summaries(run)
    assert [(step, blobs) for step, blobs in found["samples"]] == [(e, [files[e]]) for e in (1, 2, 10)]
    assert found["samples/val"] == [(2, [jpeg])]  # the JPEG as it is: never decoded, never re-encoded


def test_natural_order_puts_2_before_10():
    names = ["img10.png", "img2.png", "IMG1.png", "img2b.png"]
    assert sorted(names, key=natural_key) == ["IMG1.png", "img2.png", "img2b.png", "img10.png"]


def test_images_of_one_tag_and_step_are_the_samples_of_one_summary(cli, tmp_path):
    for name, seed in (("a_3.png", 1), ("b_3.png", 2), ("c_4.png", 3)):
        save(tmp_path / "gen" / name, seed)
    _, run = logged(cli, tmp_path / "gen", "--logdir", tmp_path / "logs")
    assert [(step, len(blobs)) for step, blobs in summaries(run)["gen"]] == [(3, 2), (4, 1)]


def test_names_without_numbers_are_one_summary_at_step_0_and_a_mix_says_so(cli, tmp_path):
    for name in ("cat.png", "dog.png"):
        save(tmp_path / "pets" / name)
    payload, run = logged(cli, tmp_path / "pets", "--logdir", tmp_path / "logs")
    assert [(step, len(blobs)) for step, blobs in summaries(run)["pets"]] == [(0, 2)] and payload["notices"] == []
    for epoch in (1, 2):
        save(tmp_path / "series" / f"epoch_{epoch}.png", epoch)
    save(tmp_path / "series" / "final.png", 9)
    payload, run = logged(cli, tmp_path / "series", "--logdir", tmp_path / "logs")
    assert [step for step, _ in summaries(run)["series"]] == [0, 1, 2]  # the numbered steps are kept
    (notice,) = payload["notices"]
    assert "final.png has no number in its name and went to step 0" in notice and "--step-pattern" in notice
    result = cli("log", tmp_path / "series", "--logdir", tmp_path / "logs")
    assert result.exit_code == 0 and "final.png has no number" in result.stdout + result.stderr


def test_steps_from_order_and_one_step_for_all(cli, tmp_path):
    for name in ("z.png", "a10.png", "a9.png"):
        save(tmp_path / "f" / name)
    _, run = logged(cli, tmp_path / "f", "--steps-from", "order", "--logdir", tmp_path / "logs")
    assert [step for step, _ in summaries(run)["f"]] == [0, 1, 2]
    _, run = logged(cli, tmp_path / "f", "--step", "7", "--logdir", tmp_path / "logs")
    assert [(step, len(blobs)) for step, blobs in summaries(run)["f"]] == [(7, 3)]


def test_files_given_one_by_one_take_their_folders_name_or_the_tag(cli, tmp_path):
    one, two = save(tmp_path / "shots" / "s1.png", 1), save(tmp_path / "shots" / "s2.gif", 2)
    _, run = logged(cli, tmp_path / "shots" / "s1.png", tmp_path / "shots" / "s2.gif", "--logdir", tmp_path / "l")
    assert summaries(run) == {"shots": [(1, [one]), (2, [two])]}
    _, run = logged(cli, tmp_path / "shots" / "s1.png", "--tag", "best", "--logdir", tmp_path / "l")
    assert list(summaries(run)) == ["best"]


def test_a_quoted_glob_is_expanded_by_tbimg(cli, tmp_path):
    for epoch in range(3):
        save(tmp_path / "out" / f"pred_{epoch}.png", epoch)
        save(tmp_path / "out" / f"input_{epoch}.png", epoch)
    _, run = logged(cli, str(tmp_path / "out" / "pred_*.png"), "--logdir", tmp_path / "l")
    assert [step for step, _ in summaries(run)["out"]] == [0, 1, 2]
    result = cli("log", str(tmp_path / "out" / "nothing_*.png"), "--logdir", tmp_path / "l")
    assert result.exit_code == 1 and "nothing_*.png: no files match this pattern" in result.stderr


def test_one_image_on_standard_input(cli, tmp_path):
    data = save(tmp_path / "x.bmp")
    from tbimg_cli.cli import app

    result = cli.runner.invoke(
        app, ["log", "-", "--tag", "piped", "--logdir", str(tmp_path / "l"), "--json"], input=data
    )
    payload = json.loads(result.stdout)
    assert summaries(Path(payload["run_dir"])) == {"piped": [(0, [data])]}


def test_arrays_in_files(cli, tmp_path):
    (tmp_path / "arr").mkdir()
    np.save(tmp_path / "arr" / "masks_5.npy", RNG.random((4, 8, 8)) > 0.5)
    _, run = logged(cli, tmp_path / "arr" / "masks_5.npy", "--logdir", tmp_path / "l")
    assert [(step, len(blobs)) for step, blobs in summaries(run)["arr"]] == [(5, 4)]
    _, run = logged(cli, tmp_path / "arr" / "masks_5.npy", "--steps-from", "order", "--logdir", tmp_path / "l")
    assert [(step, len(blobs)) for step, blobs in summaries(run)["arr"]] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    np.savez(tmp_path / "arr" / "pair_1.npz", x=np.zeros((2, 8, 8, 3), np.uint8), y=np.ones((8, 8), np.float32))
    _, run = logged(cli, tmp_path / "arr" / "pair_1.npz", "--logdir", tmp_path / "l")
    assert {tag: len(found[0][1]) for tag, found in summaries(run).items()} == {"arr/x": 2, "arr/y": 1}
    np.save(tmp_path / "arr" / "depth_1.npy", RNG.random((8, 8)) * 10)
    result = cli("log", tmp_path / "arr" / "depth_1.npy", "--logdir", tmp_path / "l")
    assert result.exit_code == 1 and "--value-range" in result.stderr
    payload, run = logged(cli, tmp_path / "arr" / "depth_1.npy", "--value-range", "0,10", "--logdir", tmp_path / "l")
    assert payload["images"] == 1


def bad_files(folder: Path) -> dict[str, str]:
    """One file of each kind `tbimg log` must refuse, named with a step, and what its line must say."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg, png = save(folder / "ok_1.jpg", 1), save(folder / "ok_2.png", 2)
    (folder / "cut_3.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "cut_4.png").write_bytes(png[: len(png) // 2])
    damaged = bytearray(png)
    damaged[60] ^= 0xFF
    (folder / "crc_5.png").write_bytes(bytes(damaged))
    (folder / "empty_6.png").write_bytes(b"")
    (folder / "text_7.png").write_text("hello")
    (folder / "bomb_8.png").write_bytes(bomb_png())
    np.save(folder / "dims_9.npy", np.zeros((1, 2, 3, 4, 5)))
    np.save(folder / "objects_10.npy", np.array([None, {}], dtype=object), allow_pickle=True)
    np.save(folder / "nan_11.npy", np.full((4, 4), np.nan))
    np.save(folder / "two_12.npy", np.zeros((4, 4, 2), np.uint8))
    os.symlink("loop_13.png", folder / "loop_13.png")
    os.mkfifo(folder / "pipe_14.png")  # opening it to read would wait for a writer forever
    return {
        "cut_3.jpg": "JPEG file is cut short",
        "cut_4.png": "PNG file is cut short",
        "crc_5.png": "fails its CRC check",
        "empty_6.png": "the file is empty",
        "text_7.png": "not an image tbimg can read",
        "bomb_8.png": "claims 100,000 x 100,000 pixels",
        "dims_9.npy": "2 to 4 dimensions",
        "objects_10.npy": "Python objects",
        "nan_11.npy": "NaN or infinity",
        "two_12.npy": "1, 3 or 4 channels",
        "loop_13.png": "cannot read it (Too many levels of symbolic links)",
        "pipe_14.png": "not a regular file",
    }


def test_bad_input_is_one_line_each_and_the_valid_rest_is_logged(cli, tmp_path):
    expected = bad_files(tmp_path / "mixed")
    (tmp_path / "mixed" / "no_number.png").write_bytes((tmp_path / "mixed" / "ok_2.png").read_bytes())
    expected["no_number.png"] = "has no number in its name to take the step from (--steps-from name)"
    result = cli("log", tmp_path / "mixed", "--steps-from", "name", "--logdir", tmp_path / "logs", "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert {Path(p["path"]).name: p["message"] for p in payload["problems"]}.keys() == expected.keys()
    for problem in payload["problems"]:
        assert expected[Path(problem["path"]).name] in problem["message"]
    assert [step for step, _ in summaries(Path(payload["run_dir"]))["mixed"]] == [1, 2]
    result = cli("log", tmp_path / "mixed", "--steps-from", "name", "--logdir", tmp_path / "logs")
    assert result.exit_code == 1 and "Wrote 2 images from 2 files, steps 1..2" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == len(expected) and all(line.startswith("Error: ") for line in lines)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file_is_one_line(cli, tmp_path):
    save(tmp_path / "f" / "a_1.png")
    save(tmp_path / "f" / "b_2.png")
    (tmp_path / "f" / "b_2.png").chmod(0)
    result = cli("log", tmp_path / "f", "--logdir", tmp_path / "logs")
    assert result.exit_code == 1 and "b_2.png: cannot read it (Permission denied)" in result.stderr


def test_nothing_valid_leaves_no_run_behind(cli, tmp_path):
    (tmp_path / "t.png").write_text("text")
    result = cli("log", tmp_path / "t.png", "--logdir", tmp_path / "logs")
    assert result.exit_code == 1
    assert list((tmp_path / "logs" / "images").iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "1", "--steps-from", "order"], "Invalid value for '--step': cannot be used with --steps-from"),
        (["--steps-from", "nam"], "Invalid value for '--steps-from': 'nam' is not one of 'name', 'folder', 'order'"),
        (["--steps-from", "name", "--step-pattern", "(\\d+)"], "Invalid value for '--steps-from': cannot be used"),
        (["--step-pattern", "epoch_\\d+"], "Invalid value for '--step-pattern': needs a group"),
        (["--step-pattern", "epoch_(\\d+"], "Invalid value for '--step-pattern': is no regular expression"),
        (["--layout", "HCW"], "Invalid value for '--layout': 'HCW' is not one of"),
        (["--run-dir", "r", "--run-name", "n"], "give --run-dir or --run-name, not both"),
        (["--value-range", "1:2"], "give LOW,HIGH"),
    ],
)
def test_usage_errors_exit_2_in_clicks_words_before_any_work(cli, tmp_path, args, message):
    save(tmp_path / "a.png")
    result = cli("log", tmp_path / "a.png", *args, "--logdir", tmp_path / "logs")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Value error" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "(see 'tbimg log --help')" in result.stderr
    assert not (tmp_path / "logs").exists()


def test_json_of_a_failed_log_has_error_and_exit_code_and_no_removed_run_dir(cli, tmp_path):
    (tmp_path / "t.png").write_text("text")
    result = cli("log", tmp_path / "t.png", tmp_path / "u.png", "--json", "--logdir", tmp_path / "logs")
    payload = json.loads(result.stdout)
    assert result.exit_code == 1 and payload["exit_code"] == 1 and "run_dir" not in payload
    first = payload["problems"][0]
    assert payload["error"] == f"{first['path']}: {first['message']} (and 1 more path)"
    assert {Path(problem["path"]).name for problem in payload["problems"]} == {"t.png", "u.png"}
    save(tmp_path / "a.png")
    partly = cli("log", tmp_path / "a.png", tmp_path / "t.png", "--json", "--logdir", tmp_path / "logs")
    payload = json.loads(partly.stdout)
    assert partly.exit_code == 1 and payload["exit_code"] == 1 and Path(payload["run_dir"]).is_dir()
    assert payload["images"] == 1


def test_hidden_files_and_folders_are_skipped_unless_named(cli, tmp_path):
    for step in (1, 2):
        save(tmp_path / "run" / f"epoch_{step}.png")
    (tmp_path / "run" / "._epoch_1.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS's resource fork
    save(tmp_path / "run" / ".ipynb_checkpoints" / "epoch_1-checkpoint.png")
    payload, _ = logged(cli, tmp_path / "run")
    assert payload["images"] == 2 and payload["tags"] == ["run"] and payload["steps"] == [1, 2]
    assert payload["problems"] == []
    named = cli("log", tmp_path / "run" / "._epoch_1.png", "--logdir", tmp_path / "named")
    assert named.exit_code == 1 and "._epoch_1.png" in named.stderr


def test_a_float_tiff_is_logged_with_value_range(cli, tmp_path):
    from PIL import Image

    values = np.linspace(0.0, 4095.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "depth.tiff")
    refused = cli("log", tmp_path / "depth.tiff", "--logdir", tmp_path / "refused")
    assert refused.exit_code == 1 and "--value-range" in refused.stderr
    payload, _ = logged(cli, tmp_path / "depth.tiff", "--value-range", "0,4095")
    assert payload["images"] == 1 and payload["problems"] == []


def test_watch_without_a_folder_is_one_line_before_any_work(cli, tmp_path):
    save(tmp_path / "a.png")
    result = cli("log", tmp_path / "a.png", "--watch", "--logdir", tmp_path / "logs")
    assert result.exit_code == 1 and "--watch needs a folder or a quoted glob" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "logs").exists()


def test_run_dir_adds_a_new_event_file_and_touches_nothing_else(cli, tmp_path):
    run = tmp_path / "train_run"
    run.mkdir()
    (run / "events.out.tfevents.1.host.1.0.v2").write_bytes(b"theirs")
    save(tmp_path / "s" / "e_1.png")
    payload, written = logged(cli, tmp_path / "s", "--run-dir", run)
    assert written == run and (run / "events.out.tfevents.1.host.1.0.v2").read_bytes() == b"theirs"
    assert len(event_files(run)) == 2
    payload, _ = logged(cli, tmp_path / "s", "--run-dir", tmp_path / "new" / "run")  # created if missing
    assert payload["images"] == 1


def test_export_gives_back_the_same_files(cli, tmp_path):
    files = {name: save(tmp_path / "mix" / name, i) for i, name in enumerate(["a_1.jpg", "a_2.gif", "a_3.bmp"])}
    logged(cli, tmp_path / "mix", "--logdir", tmp_path / "logs")
    (tag,) = cli.json("inspect", tmp_path / "logs")["tags"]
    assert (tag["tag"], tag["plugin"], tag["steps"]["count"], tag["width"], tag["height"]) == (
        "mix",
        "images",
        3,
        32,
        24,
    )
    result = cli("export", tmp_path / "logs", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    exported = sorted(
        path.read_bytes() for path in (tmp_path / "out").rglob("*") if path.is_file() and path.suffix != ".csv"
    )
    assert exported == sorted(files.values())


# --watch: a writer process adds files while tbimg watches; then a restart


WRITER = textwrap.dedent("""
    import io, sys, time
    import numpy as np
    from PIL import Image
    folder, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for epoch in range(first, last + 1):
        buffer = io.BytesIO()
        Image.fromarray(np.full((40, 40, 3), epoch * 20, np.uint8)).save(buffer, "PNG")
        data = buffer.getvalue()
        with open(f"{folder}/epoch_{epoch:03d}.png", "wb") as out:   # written in two halves, slowly
            out.write(data[: len(data) // 2]); out.flush(); time.sleep(0.6)
            out.write(data[len(data) // 2 :])
        print(epoch, time.time(), flush=True)
        time.sleep(0.3)
""")


def watcher(folder: Path, run: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tbimg_cli", "log", str(folder), "--watch", "--run-dir", str(run), "--json"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def watched(folder: Path, run: Path, cwd: Path, during, until) -> dict:
    """`tbimg log FOLDER --watch --run-dir RUN --json` while `during()` writes files, stopped with Ctrl-C
    once `until()` holds; its JSON result, after checking it exited 0."""
    proc = watcher(folder, run, cwd)
    try:
        during()
        wait_until(lambda: event_files(run) and until(), timeout=30, what="the watched files")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return json.loads(out)


def write_epochs(folder: Path, first: int, last: int) -> subprocess.Popen:
    """A writer process adding epoch files in two slow halves; it prints each epoch and when it was complete."""
    args = [sys.executable, "-c", WRITER, str(folder), str(first), str(last)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def completion_times(writer: subprocess.Popen) -> dict[int, float]:
    out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0
    return {int(epoch): float(when) for epoch, when in (line.split() for line in out.splitlines())}


@pytest.mark.slow
def test_watch_logs_each_new_file_once_complete_and_a_restart_logs_nothing_twice(tmp_path):
    folder, run = tmp_path / "samples", tmp_path / "runs" / "exp"
    save(folder / "epoch_000.png")
    proc = watcher(folder, run, tmp_path)
    try:
        wait_until(lambda: event_files(run) and summaries(run), timeout=60, what="the first pass")  # loader loaded
        writer = write_epochs(folder, 1, 4)
        seen_at: dict[int, float] = {}

        def steps_now() -> set[int]:
            steps = {step for step, _ in summaries(run).get("samples", [])}
            for step in steps - seen_at.keys():
                seen_at[step] = time.time()
            return steps

        wait_until(lambda: steps_now() >= {0, 1, 2, 3, 4}, timeout=30, interval=0.05, what="epochs 1-4")
        completed = completion_times(writer)
        assert all(seen_at[epoch] - completed[epoch] <= 1.0 for epoch in range(1, 5)), (seen_at, completed)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    payload = json.loads(out)
    assert payload["files"] == 5 and payload["problems"] == []
    found = summaries(run)["samples"]
    assert [step for step, _ in found] == [0, 1, 2, 3, 4]  # none logged half, none twice
    assert all(Image.open(io.BytesIO(blobs[0])).getpixel((0, 0))[0] == step * 20 for step, blobs in found[1:])

    restarted = watcher(folder, run, tmp_path)
    try:
        time.sleep(2)  # its first pass finds every file logged already
        completion_times(write_epochs(folder, 5, 5))
        wait_until(lambda: {s for s, _ in summaries(run)["samples"]} >= {5}, timeout=30, what="epoch 5")
        restarted.send_signal(signal.SIGINT)
        out, err = restarted.communicate(timeout=30)
    finally:
        restarted.kill()
    assert restarted.returncode == 0, err
    assert json.loads(out)["skipped"] == 5
    assert [step for step, _ in summaries(run)["samples"]] == [0, 1, 2, 3, 4, 5]
    assert len(list(run.glob(f"{SOURCES_PREFIX}*"))) == 2  # one list per session; the first one untouched


@pytest.mark.slow
def test_a_real_tensorboard_serves_each_image_as_its_bytes_and_steps(serve, tmp_path):
    folder = tmp_path / "epochs"
    files = {epoch: save(folder / f"epoch_{epoch}.{ext}", epoch) for epoch, ext in ((1, "jpg"), (2, "png"), (3, "gif"))}
    served: Served = serve("log", folder, "--watch", "--serve", "--port", free_port(), "--logdir", tmp_path / "logs")
    tags = served.wait_for(lambda: served.get_json("/data/plugin/images/tags"))
    (run,) = tags
    entries = served.get_json("/data/plugin/images/images", run=run, tag="epochs", sample=0)
    assert [entry["step"] for entry in entries] == [1, 2, 3]
    for entry in entries:
        assert served.get("/data/plugin/images/individualImage?" + entry["query"]) == files[entry["step"]]
    files[4] = save(folder / "epoch_4.png", 4)  # logged while watching, shown by the server
    entries = served.wait_for(
        lambda: (e := served.get_json("/data/plugin/images/images", run=run, tag="epochs", sample=0))[3:] and e
    )
    assert served.get("/data/plugin/images/individualImage?" + entries[3]["query"]) == files[4]
    assert served.interrupt() == 0


def test_the_log_command_is_documented(cli):
    result = cli("log", "--help")
    assert result.exit_code == 0
    for option in ("--tag", "--step", "--steps-from", "--run-dir", "--watch", "--max-pixels", "--serve", "--json"):
        assert option in result.stdout
