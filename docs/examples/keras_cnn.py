"""A Keras CNN on colour images with three classes, logged with `ConfusionMatrixCallback`.

    pip install 'tbimg[train]'       # Keras and TensorFlow
    python docs/examples/keras_cnn.py [--data-dir DIR] [--logdir logs/cnn] [--epochs 3]
    tensorboard --logdir logs/cnn

Not the tutorial's model: two convolutions on 28x28 RGB images made from three
Fashion-MNIST classes (each garment tinted with a colour of its own), so that
the callback sees colour inputs, a 3-class matrix and its own class names.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CLASSES = {0: "T-shirt/top", 1: "Trouser", 7: "Sneaker"}  # Fashion-MNIST ids -> names


def rgb_subset(images, labels):
    """Images of the three classes as float RGB in [0, 1], labels renumbered 0, 1, 2."""
    import numpy as np

    keep = np.isin(labels, list(CLASSES))
    grey = images[keep].astype("float32") / 255
    new_labels = np.searchsorted(sorted(CLASSES), labels[keep])
    tints = np.random.default_rng(0).uniform(0.3, 1.0, (len(grey), 1, 1, 3)).astype("float32")
    return grey[..., None] * tints, new_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TBIMG_DATA_DIR"), help="the Fashion-MNIST files")
    parser.add_argument("--logdir", default="logs/cnn")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    import keras

    from tbimg_cli import ConfusionMatrixCallback
    from tbimg_cli.tutorial import data

    x_train, y_train = rgb_subset(*data.load("train", args.data_dir))
    x_val, y_val = rgb_subset(*data.load("test", args.data_dir))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(CLASSES)),  # logits: the callback takes them as they are
        ]
    )
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    callbacks = [
        keras.callbacks.TensorBoard(args.logdir),
        ConfusionMatrixCallback(args.logdir, (x_val, y_val), class_names=[CLASSES[i] for i in sorted(CLASSES)]),
    ]
    model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=64,
        validation_data=(x_val, y_val),
        verbose=2,
        callbacks=callbacks,
    )
    print(f"logged to {args.logdir}; view with: tensorboard --logdir {args.logdir}")


if __name__ == "__main__":
    main()
