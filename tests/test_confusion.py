"""The public confusion-matrix API: `log_confusion_matrix` on any arrays, `ConfusionMatrixCallback` on Keras.

Everything is read back with TensorBoard's own reader and compared with a
matrix computed independently (scikit-learn) from the same labels and predictions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

import tbimg_cli
from tbimg_cli.errors import InputError

from .helpers import REPO, decode_png, event_files, load_run

RNG = np.random.default_rng(0)
NAMES = ["cat", "dog", "bird"]


def _table_counts(markdown: str) -> np.ndarray:
    """The matrix back out of the Markdown table the text summary holds."""
    rows = [line for line in markdown.splitlines() if line.startswith("| **")]
    return np.array([[int(cell) for cell in row.split("|")[2:-2]] for row in rows])


def _text(run_dir: Path, tag: str = "Confusion Matrix (table)") -> list[str]:
    return [e.tensor_proto.string_val[0].decode() for e in load_run(run_dir).Tensors(tag)]


def _scalars(run_dir: Path, tag: str) -> list[float]:
    from tensorboard.util import tensor_util

    return [float(tensor_util.make_ndarray(e.tensor_proto)) for e in load_run(run_dir).Tensors(tag)]


def _labels_and_predictions(n=60, classes=3):
    y_true = RNG.integers(0, classes, n)
    y_pred = np.where(RNG.random(n) < 0.7, y_true, RNG.integers(0, classes, n))
    return y_true, y_pred


def test_every_tag_from_plain_arrays_agrees_with_scikit_learn(tmp_path):
    y_true, y_pred = _labels_and_predictions()
    images = RNG.integers(0, 256, (60, 12, 10), dtype=np.uint8)
    folder = tbimg_cli.log_confusion_matrix(tmp_path / "run", y_true, y_pred, step=4, class_names=NAMES, images=images)
    assert folder == tmp_path / "run" / "cm"
    expected = confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
    tags = load_run(folder).Tags()["tensors"]
    assert set(tags) == {
        "Confusion Matrix",
        "Confusion Matrix (table)",
        "Misclassified",
        *(f"per_class_accuracy/{n}" for n in NAMES),
        *(f"per_class_precision/{n}" for n in NAMES),
        *(f"Confusion Matrix ({kind})" for kind in ("counts", "examples", "thumbnails")),  # the explorer's
    }
    (table,) = _text(folder)
    assert np.array_equal(_table_counts(table), expected) and "| true \\ predicted | cat | dog | bird |" in table
    for i, name in enumerate(NAMES):
        assert _scalars(folder, f"per_class_accuracy/{name}") == pytest.approx([expected[i, i] / expected[i].sum()])
        assert _scalars(folder, f"per_class_precision/{name}") == pytest.approx([expected[i, i] / expected[:, i].sum()])
    (gallery,) = load_run(folder).Tensors("Misclassified")
    assert gallery.step == 4 and decode_png(gallery.tensor_proto.string_val[2]).ndim == 3  # drawn as RGBA


def _logits(ids, classes):
    return np.eye(classes)[ids] * 5.0 - 2.0 + RNG.normal(0, 0.1, (len(ids), classes))


@pytest.mark.parametrize(
    "form",
    ["ids", "one-hot labels", "probabilities", "logits", "float ids", "list"],
)
def test_label_and_prediction_forms_give_the_same_matrix(tmp_path, form):
    y_true, y_pred = _labels_and_predictions()
    truth, pred = y_true, y_pred
    if form == "one-hot labels":
        truth = np.eye(3)[y_true]
    elif form == "probabilities":
        logits = _logits(y_pred, 3)
        pred = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    elif form == "logits":
        pred = _logits(y_pred, 3)
    elif form == "float ids":
        pred = y_pred.astype(np.float32)
    elif form == "list":
        truth, pred = y_true.tolist(), y_pred.tolist()
    folder = tbimg_cli.log_confusion_matrix(tmp_path, truth, pred, step=0, class_names=NAMES)
    assert np.array_equal(_table_counts(_text(folder)[0]), confusion_matrix(y_true, y_pred, labels=[0, 1, 2]))


@pytest.mark.parametrize("shape", [(40,), (40, 1)])
@pytest.mark.parametrize("kind", ["sigmoid", "logit"])
def test_a_single_binary_output(tmp_path, shape, kind):
    y_true = RNG.integers(0, 2, 40)
    probability = np.clip(y_true * 0.8 + RNG.normal(0.1, 0.2, 40), 0, 1)
    scores = probability if kind == "sigmoid" else np.log(probability + 1e-6) - np.log(1 - probability + 1e-6)
    folder = tbimg_cli.log_confusion_matrix(tmp_path, y_true, scores.reshape(shape), step=0)
    expected = confusion_matrix(y_true, (probability > 0.5).astype(int), labels=[0, 1])
    (table,) = _text(folder)
    assert np.array_equal(_table_counts(table), expected) and "| true \\ predicted | 0 | 1 |" in table


def test_many_classes_stay_legible_and_list_the_most_confused_pairs(tmp_path):
    from tbimg_cli.confusion import figures

    classes = 300
    y_true = np.repeat(np.arange(classes), 4)
    y_pred = y_true.copy()
    y_pred[::4] = (y_true[::4] + 1) % classes  # one in four taken for the next class
    y_pred[1] = 7  # and one pair confused twice
    y_pred[2] = 7
    names = [f"class-{i}" for i in range(classes)]
    folder = tbimg_cli.log_confusion_matrix(tmp_path, y_true, y_pred, step=0, class_names=names)
    (text,) = _text(folder)
    assert "most confused pairs" in text and "| class-0 | class-7 | 2 | 0.500 |" in text
    assert text.count("\n| class-") == 20
    fig = figures.confusion_matrix_figure(confusion_matrix(y_true, y_pred), names, "t")
    assert not fig.axes[0].texts  # no cell numbers at this size
    assert len(fig.axes[0].get_xticklabels()) <= 80


@pytest.mark.parametrize(
    "images",
    [
        RNG.integers(0, 256, (30, 8, 8), dtype=np.uint8),
        RNG.integers(0, 256, (30, 8, 8, 1), dtype=np.uint8),
        RNG.random((30, 8, 8, 3)),
        RNG.normal(0, 3, (30, 8, 8, 3)).astype(np.float32),
    ],
    ids=["HxW", "HxWx1", "rgb-floats-0-1", "rgb-standardised"],
)
def test_image_inputs_of_any_shape_and_range_get_a_gallery(tmp_path, images):
    y_true, y_pred = _labels_and_predictions(30)
    folder = tbimg_cli.log_confusion_matrix(tmp_path, y_true, y_pred, 1, NAMES, images, max_misclassified=4)
    assert "Misclassified" in load_run(folder).Tags()["tensors"]


def test_non_image_inputs_get_no_gallery_and_no_error(tmp_path):
    y_true, y_pred = _labels_and_predictions(30)
    folder = tbimg_cli.log_confusion_matrix(tmp_path, y_true, y_pred, 1, NAMES, images=RNG.random((30, 20)))
    tags = load_run(folder).Tags()["tensors"]
    assert "Misclassified" not in tags and "Confusion Matrix" in tags


def test_steps_append_to_one_file(tmp_path):
    y_true, y_pred = _labels_and_predictions()
    for step in range(3):
        folder = tbimg_cli.log_confusion_matrix(tmp_path, y_true, y_pred, step, NAMES, subdir="")
    assert folder == tmp_path and len(event_files(tmp_path)) == 1
    assert [e.step for e in load_run(tmp_path).Tensors("Confusion Matrix")] == [0, 1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(y_true=[0, 1, 3], y_pred=[0, 1, 1], class_names=NAMES), "y_true holds class 3, outside 0 to 2"),
        (dict(y_true=[0, 1, 2], y_pred=[0, 1, -1]), "y_pred holds class -1"),
        (dict(y_true=[0, 1, 2], y_pred=[0, 1]), "one entry per example, got 3 and 2"),
        (dict(y_true=[], y_pred=[]), "no examples"),
        (
            dict(y_true=[0, 1], y_pred=[[0.2, 0.8, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]], class_names=NAMES),
            "y_pred has 4 columns (one per class) but class_names names 3 classes",
        ),
        (dict(y_true=[0, 1], y_pred=[0, 1], images=np.zeros((3, 8, 8))), "one entry per example, got 3 for 2"),
        (dict(y_true=[0, 1], y_pred=[0, 1], normalize="columns"), "normalize must be one of"),
    ],
)
def test_bad_arguments_are_one_clear_error_and_write_nothing(tmp_path, args, message):
    with pytest.raises(InputError, match=re.escape(message)):
        tbimg_cli.log_confusion_matrix(tmp_path, step=0, **args)
    assert not any(tmp_path.rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("classes", [2, 10, 37])
def test_counts_agree_with_scikit_learn_including_classes_never_seen(classes):
    from tbimg_cli.confusion.matrix import count_matrix

    y_true = RNG.integers(0, classes - 1, 5000)  # the last class never occurs as truth...
    y_pred = np.where(RNG.random(5000) < 0.6, y_true, RNG.integers(1, classes, 5000))  # ...class 0 rarely as prediction
    assert np.array_equal(
        count_matrix(y_true, y_pred, classes), confusion_matrix(y_true, y_pred, labels=range(classes))
    )


def test_log_confusion_matrix_imports_neither_tensorflow_nor_scikit_learn(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import tbimg_cli
        scores = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]
        tbimg_cli.log_confusion_matrix({str(tmp_path)!r}, [0, 1, 1, 0], scores, step=0,
                                       images=[[[0, 255], [255, 0]]] * 4)
        print(" ".join(m for m in ("tensorflow", "keras", "sklearn", "pandas") if m in sys.modules) or "none")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none"
    assert "import tbimg_cli" in code and event_files(tmp_path / "cm")


# The Keras callback


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def _tiny_model(keras, classes=3):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(classes, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _data(n=90):
    y = RNG.integers(0, 3, n)
    x = (RNG.random((n, 6, 6)) * 0.3 + y[:, None, None] * 0.3).astype(np.float32)
    return x, y


@pytest.mark.slow
@pytest.mark.parametrize("as_dataset", [False, True], ids=["arrays", "tf.data"])
def test_callback_logs_every_epoch_and_the_last_matches_the_model(tmp_path, keras, as_dataset):
    import tensorflow as tf

    x, y = _data()
    validation = tf.data.Dataset.from_tensor_slices((x, y)).batch(32) if as_dataset else (x, y)
    model = _tiny_model(keras)
    callback = tbimg_cli.ConfusionMatrixCallback(tmp_path, validation, NAMES, max_misclassified=5)
    assert isinstance(callback, keras.callbacks.Callback)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    run = load_run(tmp_path / "cm")
    assert [e.step for e in run.Tensors("Confusion Matrix")] == [0, 1, 2]
    expected = confusion_matrix(y, model.predict(x, verbose=0).argmax(axis=1), labels=[0, 1, 2])
    assert np.array_equal(_table_counts(_text(tmp_path / "cm")[-1]), expected)


@pytest.mark.slow
def test_validation_from_the_matrix_pass_matches_keras_own_validation(tmp_path, keras):
    """train-cm's callback stands in for `fit(validation_data=...)`: same numbers, same tags."""
    from tbimg_cli.tutorial.one_pass_validation import ValidationAndConfusionMatrixCallback

    x, y = _data()
    x_val, y_val = _data(200)
    y_val[:3] = 0  # a few confident mistakes, so that clipping matters to the loss
    model = _tiny_model(keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    board = keras.callbacks.TensorBoard(tmp_path, write_graph=False)
    callback = ValidationAndConfusionMatrixCallback(tmp_path, (x_val, y_val), NAMES, board=board, every_n_epochs=2)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback, board])
    keras_loss, keras_accuracy = model.evaluate(x_val, y_val, verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(keras_loss, rel=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(keras_accuracy, abs=1e-6)  # Keras keeps float32
    validation = load_run(tmp_path / "validation")
    assert {
        "epoch_loss",
        "epoch_accuracy",
        "evaluation_loss_vs_iterations",
        "evaluation_accuracy_vs_iterations",
    } <= set(validation.Tags()["tensors"])
    assert [e.step for e in validation.Tensors("evaluation_loss_vs_iterations")] == [
        6,
        12,
    ]  # optimizer steps, as Keras logs them
    assert [e.step for e in load_run(tmp_path / "cm").Tensors("Confusion Matrix")] == [0, 1]  # 0, and the last


@pytest.mark.slow
def test_callback_every_n_epochs_and_its_own_subdir(tmp_path, keras):
    x, y = _data()
    callback = tbimg_cli.ConfusionMatrixCallback(
        tmp_path, (x, y), every_n_epochs=2, subdir="matrices", normalize="none"
    )
    _tiny_model(keras).fit(x, y, epochs=5, verbose=0, callbacks=[callback])
    # Keras's convention (histogram_freq): epochs 0, 2, 4; and the last epoch always.
    assert [e.step for e in load_run(tmp_path / "matrices").Tensors("Confusion Matrix")] == [0, 2, 4]
    again = tbimg_cli.ConfusionMatrixCallback(tmp_path / "even", (x, y), every_n_epochs=2)
    _tiny_model(keras).fit(x, y, epochs=4, verbose=0, callbacks=[again])
    assert [e.step for e in load_run(tmp_path / "even" / "cm").Tensors("Confusion Matrix")] == [0, 2, 3]
    assert "| true \\ predicted | 0 | 1 | 2 |" in _text(tmp_path / "matrices")[0]  # names default to indices


@pytest.mark.parametrize(
    ("validation", "options", "message"),
    [
        ((np.zeros((3, 6, 6)), np.array([0, 1])), {}, "3 inputs but 2 labels"),
        ((np.zeros((0, 6, 6)), np.array([])), {}, "no examples"),
        ((np.zeros((2, 6, 6)), np.array([0, 5])), {"class_names": NAMES}, "outside 0 to 2"),
        ("not data", {}, "must be (x, y) arrays or a tf.data.Dataset"),
        ((np.zeros((2, 6, 6)), np.array([0, 1])), {"every_n_epochs": 0}, "every_n_epochs"),
    ],
)
def test_callback_refuses_bad_arguments_at_construction(tmp_path, keras, validation, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        tbimg_cli.ConfusionMatrixCallback(tmp_path, validation, **options)


@pytest.mark.slow
def test_ctrl_c_during_training_still_writes_every_queued_epoch(tmp_path):
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import keras, numpy as np, tbimg_cli
        x = np.random.default_rng(0).random((64, 6, 6)).astype("float32"); y = np.arange(64) % 3
        layers = [keras.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
        model = keras.Sequential(layers)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        def stop(epoch, logs):
            if epoch == 1:
                raise KeyboardInterrupt
        model.fit(x, y, epochs=5, verbose=0, callbacks=[tbimg_cli.ConfusionMatrixCallback({str(tmp_path)!r}, (x, y)),
                                                        keras.callbacks.LambdaCallback(on_epoch_end=stop)])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert "KeyboardInterrupt" in proc.stderr
    assert [e.step for e in load_run(tmp_path / "cm").Tensors("Confusion Matrix")] == [0, 1]


def test_the_public_api_loads_lazily():
    code = (
        "import sys, tbimg_cli; "
        "print(' '.join(m for m in ('tensorflow', 'keras', 'matplotlib', 'numpy') if m in sys.modules) or 'none')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.stdout.strip() == "none", proc.stderr
    assert set(tbimg_cli.__all__) >= {"ConfusionMatrixCallback", "log_confusion_matrix", "EventWriter"}


@pytest.mark.slow
def test_class_names_that_do_not_fit_the_model_fail_before_the_first_epoch_trains(tmp_path, keras):
    x, y = _data()
    callback = tbimg_cli.ConfusionMatrixCallback(tmp_path, (x, y), class_names=["a", "b", "c", "d"])
    epochs_done = []
    watcher = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs_done.append(epoch))
    with pytest.raises(InputError, match="class_names names 4 classes but the model has 3 outputs"):
        _tiny_model(keras).fit(x, y, epochs=2, verbose=0, callbacks=[callback, watcher])
    assert epochs_done == [] and not (tmp_path / "cm").exists()


@pytest.mark.slow
def test_an_unbatched_dataset_is_batched_for_the_user(tmp_path, keras):
    import tensorflow as tf

    x, y = _data()
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))  # one example at a time, as people forget .batch()
    callback = tbimg_cli.ConfusionMatrixCallback(tmp_path, unbatched, class_names=NAMES)
    model = _tiny_model(keras)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    (table,) = _text(tmp_path / "cm")
    expected = confusion_matrix(y, model.predict(x, verbose=0).argmax(axis=1), labels=[0, 1, 2])
    assert np.array_equal(_table_counts(table), expected)


def test_the_batch_bar_moves_at_least_ten_times_an_epoch():
    from tbimg_cli.tutorial.classifier import STEPS_PER_EXECUTION, steps_per_execution

    assert steps_per_execution(94) == 9  # --limit-train 3000, batch 32: once sat at 0/94, then jumped
    assert steps_per_execution(1875) == STEPS_PER_EXECUTION  # the full data keeps its speed
    assert steps_per_execution(3) == 1


def test_a_table_of_most_confused_pairs_says_so_in_its_header(tmp_path):
    classes = 40
    y = np.arange(400) % classes
    folder = tbimg_cli.log_confusion_matrix(tmp_path, y, np.roll(y, 1), step=0)
    (table,) = _text(folder)
    assert "most confused pairs" in table and "Rows: true class" not in table
