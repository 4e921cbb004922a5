"""A small Keras job under `tf.distribute` with `ConfusionMatrixCallback`, run by tests/test_distribute.py.

    python tests/distributed_job.py --strategy mirrored|multi-worker --logdir DIR --data-dir DIR --out RESULT.json

`mirrored` splits this machine's CPU into two logical devices, one replica
each; `multi-worker` reads TF_CONFIG, as TensorFlow documents. After training,
each process writes what it was (chief or not, its pid) and the confusion
matrix of the trained model's own predictions on the validation set, for the
test to compare with what the callback logged.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", choices=["mirrored", "multi-worker"], required=True)
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    if args.strategy == "multi-worker":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # Keras 3's fit cannot run it: keras-team/keras#20585
    import tensorflow as tf

    if args.strategy == "mirrored":
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()

    keras = tf.keras  # Keras 3, or tf_keras (Keras 2) for multi-worker
    import numpy as np
    from sklearn.metrics import confusion_matrix

    import tbimg_cli
    from tbimg_cli.tutorial import data

    x_train, y_train = data.load("train", args.data_dir, stop=512)
    x_val, y_val = data.load("test", args.data_dir, stop=300)
    x_train, x_val = x_train.astype("float32") / 255, x_val.astype("float32") / 255
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((28, 28)),
                keras.layers.Flatten(),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train[: len(x_train)])).batch(64).with_options(options)
    callback = tbimg_cli.ConfusionMatrixCallback(args.logdir, (x_val, y_val), data.CLASS_NAMES)
    model.fit(train, epochs=2, verbose=0, callbacks=[callback])

    predicted = np.asarray(model(x_val, training=False)).argmax(axis=1)
    result = {
        "chief": bool(strategy.extended.should_save_summary),
        "pid": os.getpid(),
        "replicas": strategy.num_replicas_in_sync,
        "matrix": confusion_matrix(y_val, predicted, labels=range(10)).tolist(),
    }
    with open(args.out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
