"""What `log_confusion_matrix` accepts as labels and predictions, and what it refuses: never a silently
wrong matrix (issue 18). Read back with TensorBoard's reader and checked against scikit-learn."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

import tbimg_cli
from tbimg_cli.errors import InputError, InputTypeError

from .helpers import REPO, event_files, load_run

RNG = np.random.default_rng(1)
Y = np.array([0, 1, 2, 2, 1, 0, 2, 1, 0, 2])


def _matrix(folder) -> np.ndarray:
    markdown = load_run(folder).Tensors("Confusion Matrix (table)")[-1].tensor_proto.string_val[0].decode()
    rows = [line for line in markdown.splitlines() if line.startswith("| **")]
    return np.array([[int(cell) for cell in row.split("|")[2:-2]] for row in rows])


def _log(tmp_path, y_true, y_pred, **options):
    return tbimg_cli.log_confusion_matrix(tmp_path / "run", y_true, y_pred, step=0, **options)


@pytest.mark.parametrize(
    ("y_pred", "where"),
    [
        (np.where(np.arange(10) == 3, np.nan, Y.astype(float)), "index 3"),  # float class ids, one NaN
        (np.where(np.arange(10)[:, None] == 7, np.nan, np.eye(3)[Y]), "index 7"),  # a row of probabilities
        (np.array([0.2, np.nan, 0.9, 0.1] * 2 + [0.4, 0.6]), "index 1"),  # sigmoid outputs
        (np.where(np.arange(10) == 5, np.inf, Y.astype(float)), "index 5"),
    ],
    ids=["float ids", "probabilities", "sigmoid", "infinity"],
)
def test_nan_or_infinity_in_predictions_is_an_error_naming_how_many_and_where(tmp_path, y_pred, where):
    y_true = Y if y_pred.ndim == 2 or len(np.unique(y_pred[np.isfinite(y_pred)])) > 2 else (Y > 0).astype(int)
    with pytest.raises(InputError, match="NaN or infinity") as caught:
        _log(tmp_path, y_true, y_pred)
    assert where in str(caught.value) and "y_pred" in str(caught.value)
    assert isinstance(caught.value, ValueError) and not (tmp_path / "run").exists()


def test_nan_in_labels_is_an_error_too(tmp_path):
    with pytest.raises(InputError, match=r"y_true holds NaN or infinity in 2 values of 2 examples \(at index 0, 9\)"):
        _log(tmp_path, np.where((np.arange(10) == 0) | (np.arange(10) == 9), np.nan, Y), Y)


@pytest.mark.parametrize(
    "as_given",
    [
        lambda labels: np.array(labels),
        lambda labels: list(labels),
        lambda labels: np.array(labels, dtype=object),
    ],
    ids=["numpy strings", "list", "object array"],
)
def test_string_labels_as_classifiers_return_them(tmp_path, as_given):
    animals = np.array(["cat", "dog", "bird"])
    y_true, y_pred = animals[Y], animals[np.roll(Y, 1)]
    folder = _log(tmp_path, as_given(y_true), as_given(y_pred))
    order = sorted({"cat", "dog", "bird"})  # without class_names: the sorted labels seen, as scikit-learn does
    assert np.array_equal(_matrix(folder), confusion_matrix(y_true, y_pred, labels=order))
    names = ["dog", "cat", "bird"]  # class_names gives the order
    again = tbimg_cli.log_confusion_matrix(tmp_path / "named", as_given(y_true), as_given(y_pred), 0, class_names=names)
    assert np.array_equal(_matrix(again), confusion_matrix(y_true, y_pred, labels=names))


def test_pandas_string_and_categorical_series(tmp_path):
    pandas = pytest.importorskip("pandas")
    animals = np.array(["cat", "dog", "bird"])
    y_true = pandas.Series(animals[Y], dtype="category")
    y_pred = pandas.Series(animals[np.roll(Y, 2)], dtype="string")
    folder = _log(tmp_path, y_true, y_pred)
    assert np.array_equal(_matrix(folder), confusion_matrix(animals[Y], animals[np.roll(Y, 2)], labels=sorted(animals)))


def test_string_labels_outside_class_names_are_named(tmp_path):
    with pytest.raises(InputError, match=r"1 label not in class_names: 'bird'"):
        _log(tmp_path, ["cat", "dog", "bird"], ["cat", "cat", "dog"], class_names=["cat", "dog"])


def test_a_sweep_of_many_runs_holds_no_file_open(tmp_path):
    """122 runs in one process under `ulimit -n 64`: each call's file is closed once its work is written."""
    code = textwrap.dedent(f"""
        import resource
        import numpy as np
        from tbimg_cli import log_confusion_matrix
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        for run in range(122):
            for step in range(2):
                log_confusion_matrix({str(tmp_path)!r} + f"/run{{run}}", [0, 1, 1, 0], [0, 1, 0, 0], step=step)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    assert resource.getrlimit(resource.RLIMIT_NOFILE)  # this process's own limit is untouched
    files = [event_files(tmp_path / f"run{run}" / "cm") for run in (0, 121)]
    assert [len(f) for f in files] == [1, 1]  # both steps of a run in one file
    assert [e.step for e in load_run(tmp_path / "run121" / "cm").Tensors("Confusion Matrix")] == [0, 1]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"step": 2.0}, InputTypeError, "step must be a whole number"),
        ({"step": -1}, InputError, "step must be 0 or more"),
        ({"subdir": ".."}, InputError, "subdir '..' must be a folder inside log_dir"),
        ({"subdir": "/elsewhere"}, InputError, "must be a folder inside log_dir"),
        ({"class_names": ["a", "b", "a"]}, InputError, "class_names must name each class once; 'a' twice"),
        ({"class_names": "abc"}, InputTypeError, "not one string"),
        ({"max_misclassified": 2.5}, InputTypeError, "max_misclassified must be an int"),
    ],
)
def test_bad_arguments_are_one_catchable_line(tmp_path, options, error, message):
    options = {"step": 0, **options}
    with pytest.raises(error, match=message) as caught:
        tbimg_cli.log_confusion_matrix(tmp_path / "run", Y, Y, **options)
    assert "\n" not in str(caught.value) and isinstance(caught.value, ValueError | TypeError)
    assert not (tmp_path / "run").exists() and not (tmp_path / "elsewhere").exists()


def test_a_log_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match="is a file") as caught:
        tbimg_cli.log_confusion_matrix(tmp_path / "file", Y, Y, step=0)
    assert isinstance(caught.value, ValueError)


def test_class_names_set_the_number_of_classes_for_ids_and_probabilities_alike(tmp_path):
    # Ids: classes that never appear in this batch get empty rows.
    folder = _log(tmp_path, Y, Y, class_names=["a", "b", "c", "d"])
    assert _matrix(folder).shape == (4, 4) and _matrix(folder)[3].sum() == 0
    # One column per class: as many columns as names, or an error that says class_names.
    with pytest.raises(InputError, match=r"y_pred has 3 columns .* class_names names 4 classes"):
        tbimg_cli.log_confusion_matrix(tmp_path / "p", Y, np.eye(3)[Y], step=0, class_names=["a", "b", "c", "d"])
    with pytest.raises(InputError, match=r"y_true holds class 2, outside 0 to 1 \(class_names names 2\)"):
        tbimg_cli.log_confusion_matrix(tmp_path / "q", Y, Y, step=0, class_names=["a", "b"])


def test_no_numpy_warning_leaks_out(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Constant and float images, a class never predicted, a binary logit: the usual places for warnings.
        _log(tmp_path, Y, np.eye(3)[Y] * 2.0 - 1.0, images=np.ones((10, 4, 4), dtype=np.float32))
        _log(tmp_path, (Y > 0).astype(int), np.linspace(-3, 3, 10), images=np.zeros((10, 4, 4)))
        _log(tmp_path, Y, np.zeros(10, dtype=int), class_names=["a", "b", "c"])


def test_a_tag_description_describes_the_tag_not_one_step(tmp_path):
    for step in range(3):
        tbimg_cli.log_confusion_matrix(tmp_path, Y, np.roll(Y, step), step=step, images=RNG.random((10, 5, 5)))
    for tag in ("Confusion Matrix", "Confusion Matrix (table)", "Misclassified"):
        descriptions = {description for _, description in _descriptions(tmp_path / "cm", tag)}
        assert len(descriptions) == 1 and "step " not in next(iter(descriptions)), descriptions


def _descriptions(folder, tag):
    from tensorboard.compat.proto import event_pb2

    from tbimg_cli.events import records

    for path in event_files(folder):
        payloads, _ = records.read_records(path)
        for payload in payloads:
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                if value.tag == tag:
                    yield event, value.metadata.summary_description
