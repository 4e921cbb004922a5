"""The confusion explorer (issue 27): exact counts, every cell's examples and thumbnails in the log, and the
routes the tbimg tab's confusion view reads them by."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix

from tbimg_cli import log_confusion_matrix

from .helpers import load_run
from .test_viewer import client_for

NAMES = ["cat", "dog", "bird", "fish"]


def evaluation_set(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4)) + 2.5 * np.eye(4)[truth]
    images = rng.integers(0, 256, (n, 12, 10), dtype=np.uint8)
    return truth, logits, images


def tensors(folder, tag):
    from tensorboard.util import tensor_util

    return [(event.step, tensor_util.make_ndarray(event.tensor_proto)) for event in load_run(folder).Tensors(tag)]


def test_the_log_holds_exact_counts_every_example_and_thumbnails_once(tmp_path):
    truth, logits, images = evaluation_set()
    for epoch in range(3):
        shifted = logits + epoch * np.eye(4)[truth]  # the model gets better: cells change between epochs
        log_confusion_matrix(tmp_path, truth, shifted, epoch, NAMES, images=images)
    folder = tmp_path / "cm"
    counts = tensors(folder, "Confusion Matrix (counts)")
    examples = tensors(folder, "Confusion Matrix (examples)")
    assert [step for step, _ in counts] == [0, 1, 2] == [step for step, _ in examples]
    for (_, matrix), (_, pairs), epoch in zip(counts, examples, range(3), strict=True):
        predicted = (logits + epoch * np.eye(4)[truth]).argmax(axis=1)
        assert matrix.dtype == np.int64 and (matrix == confusion_matrix(truth, predicted, labels=range(4))).all()
        assert (pairs[0] == truth).all() and (pairs[1] == predicted).all()  # so every index is in one cell
    (step, thumbnails), *again = tensors(folder, "Confusion Matrix (thumbnails)")
    assert step == 0 and not again  # the same inputs every epoch: written once
    assert thumbnails.shape == images.shape and (thumbnails == images).all()
    log_confusion_matrix(tmp_path, truth, logits, 3, NAMES, images=images[::-1].copy())
    assert [step for step, _ in tensors(folder, "Confusion Matrix (thumbnails)")] == [0, 3]  # new inputs: again
    # TensorBoard's own dashboards see the picture and table as before, and not the explorer's tensors.
    tags = load_run(folder).Tags()
    assert "Confusion Matrix" in tags["tensors"] and "Confusion Matrix (table)" in tags["tensors"]


def test_routes_answer_counts_cells_and_thumbnails(tmp_path):
    truth, logits, images = evaluation_set()
    log_confusion_matrix(tmp_path, truth, logits, 0, NAMES, images=images)
    better = logits + 3 * np.eye(4)[truth]
    log_confusion_matrix(tmp_path, truth, better, 1, NAMES, images=images)
    client = client_for(tmp_path)
    listed = json.loads(client.get("/data/plugin/tbimg/confusions").get_data())
    (matrix,) = listed["matrices"]
    assert matrix == {"run": "cm", "tag": "Confusion Matrix", "steps": [0, 1], "examples": True,
                      "scores": True, "thumbnails": True}  # fmt: skip
    answer = json.loads(client.get("/data/plugin/tbimg/confusion?run=cm&tag=Confusion+Matrix&step=1").get_data())
    assert answer["classes"] == NAMES
    assert answer["counts"] == confusion_matrix(truth, better.argmax(axis=1), labels=range(4)).tolist()
    predicted = logits.argmax(axis=1)
    seen = []
    for true in range(4):
        for pred in range(4):
            query = f"run=cm&tag=Confusion+Matrix&step=0&true={true}&pred={pred}"
            cell = json.loads(client.get(f"/data/plugin/tbimg/cell?{query}").get_data())
            expected = np.flatnonzero((truth == true) & (predicted == pred))
            assert sorted(cell["indices"]) == expected.tolist() and cell["count"] == len(expected)
            assert cell["scores"] == sorted(cell["scores"], reverse=True)  # most confident first
            seen += cell["indices"]
    assert sorted(seen) == list(range(len(truth)))  # the cells partition the evaluation set
    row = json.loads(client.get("/data/plugin/tbimg/cell?run=cm&tag=Confusion+Matrix&step=0&true=2").get_data())
    assert sorted(row["indices"]) == np.flatnonzero(truth == 2).tolist()
    address = row["thumbnail"].format(index=row["indices"][0])
    png = client.get(f"/data/plugin/tbimg/{address}")
    assert png.status_code == 200 and png.headers["Content-Type"].startswith("image/png")
    pixels = np.asarray(Image.open(io.BytesIO(png.get_data())))
    assert (pixels == images[row["indices"][0]]).all()


@pytest.mark.parametrize(
    "query, code",
    [
        ("confusion?run=cm&tag=Confusion+Matrix&step=x", 400),
        ("confusion?run=..&tag=Confusion+Matrix&step=0", 404),
        ("confusion?run=cm&tag=../../etc&step=0", 404),
        ("cell?run=cm&tag=Confusion+Matrix&step=0", 404),
        ("thumbnail?run=cm&tag=Confusion+Matrix&step=0&index=100000", 404),
        ("thumbnail?run=cm&tag=Confusion+Matrix&step=0&index=-1", 404),
    ],
)
def test_a_confusion_question_the_log_cannot_answer_is_a_clear_error(tmp_path, query, code):
    truth, logits, images = evaluation_set(n=40)
    log_confusion_matrix(tmp_path, truth, logits, 0, NAMES, images=images)
    assert client_for(tmp_path).get(f"/data/plugin/tbimg/{query}").status_code == code


def test_a_log_from_before_the_explorer_is_listed_as_a_picture(tmp_path):
    from tbimg_cli.confusion.figures import confusion_matrix_png
    from tbimg_cli.events.writer import EventWriter

    with EventWriter(tmp_path / "old" / "cm") as writer:
        writer.png_images(
            "Confusion Matrix", [confusion_matrix_png(np.eye(3, dtype=np.int64), ["a", "b", "c"], "t")], 0
        )
    listed = json.loads(client_for(tmp_path).get("/data/plugin/tbimg/confusions").get_data())
    assert listed == {"matrices": [], "pictures_only": [{"run": "old/cm", "tag": "Confusion Matrix"}]}


def test_export_writes_each_steps_counts_as_a_csv(tmp_path):
    import csv

    from typer.testing import CliRunner

    from tbimg_cli.cli.app import app

    truth, logits, _ = evaluation_set()
    for step in (0, 4):
        log_confusion_matrix(tmp_path / "logs", truth, logits + step * np.eye(4)[truth], step, NAMES)
    result = CliRunner().invoke(app, ["export", str(tmp_path / "logs"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "2 confusion matrices" in result.output
    folder = tmp_path / "out" / "cm" / "Confusion Matrix"
    for step in (0, 4):
        rows = list(csv.reader((folder / f"confusion-{step}.csv").open(encoding="utf-8")))
        assert rows[0] == ["true \\ predicted", *NAMES] and [row[0] for row in rows[1:]] == NAMES
        expected = confusion_matrix(truth, (logits + step * np.eye(4)[truth]).argmax(axis=1), labels=range(4))
        assert [[int(v) for v in row[1:]] for row in rows[1:]] == expected.tolist()
    assert not list(folder.parent.glob("*examples*"))  # the explorer's other tensors are not exported
