"""The tutorial's classifier and what it needs from TensorFlow: the import, the strategy, the batches.

TensorFlow is imported only inside `import_tensorflow`, which `train.run` calls
once the data is found, so a data problem fails in milliseconds and `tbimg --help`
never pays for it. `require_tensorflow` fails in one line before any work when the
`train` extra is missing.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from tbimg_cli import shortcuts
from tbimg_cli.errors import InputError, MissingExtraError
from tbimg_cli.tutorial import data

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

STEPS_PER_EXECUTION = 128


def is_chief(tf_config: str | None) -> bool:
    """Whether this process is the chief of a `TF_CONFIG` cluster, as TensorFlow decides it.

    The task of type "chief", or worker 0 when the cluster has no chief.
    Read without importing TensorFlow, so a worker knows before the import
    whether it may claim the run folder.
    """
    import json

    if not tf_config:
        return True
    try:
        config = json.loads(tf_config)
        task, cluster = config.get("task", {}), config.get("cluster", {})
    except (ValueError, AttributeError) as exc:
        raise InputError(f"TF_CONFIG is not valid JSON with 'cluster' and 'task' ({exc})") from None
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cluster


def distribute_strategy(tf: Any, name: str) -> Any:
    """The `tf.distribute` strategy for --strategy."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":  # TF_CONFIG was checked by `run` before anything loaded
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def batches(
    tf: Any,
    images: NDArray[np.uint8],
    labels: NDArray[np.uint8],
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
) -> Any:
    """uint8 images in, float32 batches in [0, 1] out; training batches reshuffled every epoch.

    Shuffles indices and gathers each batch, so the shuffle buffer holds
    60,000 integers rather than a second copy of every image.
    """
    all_images = tf.constant(images)
    all_labels = tf.constant(labels)

    def gather(indices):
        return tf.cast(tf.gather(all_images, indices), tf.float32) / 255.0, tf.gather(all_labels, indices)

    order = tf.data.Dataset.range(len(images))
    if shuffle:
        order = order.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    # Under multi-worker training each worker takes every n-th batch: there are no files to split.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = order.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    return batches.with_options(options)


def steps_per_execution(steps_per_epoch: int) -> int:
    """Batches per call into TensorFlow: up to `STEPS_PER_EXECUTION`, and at least ten calls an epoch, since
    Keras reports progress once a call (the batch bar would sit at 0 and jump to the end otherwise)."""
    return max(1, min(STEPS_PER_EXECUTION, steps_per_epoch // 10))


def build_model(keras: Any, steps_per_execution: int = STEPS_PER_EXECUTION) -> Any:
    """The tutorial's model: Flatten -> Dense(32, relu) -> Dense(10, softmax), Adam."""
    model = keras.Sequential(
        [
            keras.Input(shape=(data.IMAGE_SIDE, data.IMAGE_SIDE)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(len(data.CLASS_NAMES), activation="softmax"),
        ]
    )
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def require_tensorflow(*, legacy_keras: bool = False) -> None:
    """Fail in one line, before any work, when the `train` extra is not installed."""
    from importlib.util import find_spec

    needed = ["tensorflow", "tf_keras" if legacy_keras else "keras"]
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"train-cm needs {' and '.join(missing)}, which are not installed: {TRAIN_EXTRA_HINT}")


def import_tensorflow(*, verbose: bool, legacy_keras: bool = False) -> tuple[Any, Any]:
    """Import TensorFlow and Keras (`shortcuts.tensorflow_import` says what the tbimg process does around it).

    `legacy_keras` gives tf_keras (Keras 2) as `keras`: Keras 3's `fit` cannot
    run MultiWorkerMirroredStrategy (keras-team/keras#20585), Keras 2's can.
    TensorFlow picks its Keras once, when it is imported, from
    `TF_USE_LEGACY_KERAS`: the tbimg process sets it; a program that imports
    tbimg sets it itself, and asking for Keras 2 after TensorFlow chose Keras 3
    is an error, not a silent Keras 3.
    """
    if legacy_keras and os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
        if "tensorflow" in sys.modules or not shortcuts.process_wide():
            raise InputError(
                "--strategy multi-worker trains with tf_keras (Keras 2), which TensorFlow only uses when "
                "TF_USE_LEGACY_KERAS=1 is set before it is imported: set it in the environment"
            )
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        with shortcuts.tensorflow_import(verbose=verbose):
            import tensorflow as tf

            keras = tf.keras if legacy_keras else importlib.import_module("keras")
    except ImportError as exc:
        raise MissingExtraError(f"train-cm needs TensorFlow ({exc.name} is not installed): {TRAIN_EXTRA_HINT}") from exc
    if legacy_keras and not keras.__name__.startswith("tf_keras"):
        raise InputError(
            "--strategy multi-worker needs tf_keras (Keras 2), but TensorFlow was imported with Keras 3: "
            "set TF_USE_LEGACY_KERAS=1 before TensorFlow is imported"
        )
    if not verbose:
        shortcuts.quiet_tensorflow(tf)
    return tf, keras


TRAIN_EXTRA_HINT = "pip install 'tbimg[train]'"
