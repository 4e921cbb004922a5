"""The tutorial's way of doing what tbimg does, as a script: the baseline every benchmark compares against.

It follows TensorBoard's image-summaries tutorial step by step: import
TensorFlow, `keras.datasets.fashion_mnist.load_data()` (from the Keras cache),
reshape, `tf.summary.image`; for the plot, pyplot -> PNG -> `tf.image.decode_png`
-> `tf.summary.image`; for training, `model.fit` with the TensorBoard callback
and a LambdaCallback that predicts at the default batch size, draws the
matrix and logs it.

    python bench/tutorial_way.py single|grid|plot|train-cm --logdir DIR [--count N] [--epochs N]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
from datetime import datetime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from tensorflow import keras

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def run_dir(logdir: str, kind: str) -> str:
    return os.path.join(logdir, kind, datetime.now().strftime("%Y%m%d-%H%M%S-%f"))


def single(train_images, logdir):
    image = np.reshape(train_images[0], (-1, 28, 28, 1))
    with tf.summary.create_file_writer(run_dir(logdir, "train_data")).as_default():
        tf.summary.image("Training data", image, step=0)


def grid(train_images, logdir, count):
    images = np.reshape(train_images[0:count], (-1, 28, 28, 1))
    with tf.summary.create_file_writer(run_dir(logdir, "train_data")).as_default():
        tf.summary.image(f"{count} training data examples", images, max_outputs=count, step=0)


def plot_to_image(figure):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.savefig(buffer, format="png")
    plt.close(figure)
    return tf.expand_dims(tf.image.decode_png(buffer.getvalue(), channels=4), 0)


def plot(train_images, train_labels, logdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(10, 10))
    for i in range(25):
        plt.subplot(5, 5, i + 1, title=CLASS_NAMES[train_labels[i]])
        plt.xticks([])
        plt.yticks([])
        plt.grid(False)
        plt.imshow(train_images[i], cmap=plt.cm.binary)
    with tf.summary.create_file_writer(run_dir(logdir, "plots")).as_default():
        tf.summary.image("Training data", plot_to_image(figure), step=0)


def confusion_figure(cm):
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(8, 8))
    plt.imshow(cm, interpolation="nearest", cmap=plt.cm.Blues)
    plt.title("Confusion matrix")
    plt.colorbar()
    ticks = np.arange(len(CLASS_NAMES))
    plt.xticks(ticks, CLASS_NAMES, rotation=45)
    plt.yticks(ticks, CLASS_NAMES)
    cm = np.around(cm.astype("float") / cm.sum(axis=1)[:, np.newaxis], decimals=2)
    threshold = cm.max() / 2.0
    for i, j in itertools.product(range(cm.shape[0]), range(cm.shape[1])):
        plt.text(j, i, cm[i, j], horizontalalignment="center", color="white" if cm[i, j] > threshold else "black")
    plt.tight_layout()
    plt.ylabel("True label")
    plt.xlabel("Predicted label")
    return figure


def train_cm(data, logdir, epochs):
    import time

    import matplotlib

    matplotlib.use("Agg")
    import sklearn.metrics

    (train_images, train_labels), (test_images, test_labels) = data
    model = keras.models.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    directory = run_dir(logdir, "image")
    board = keras.callbacks.TensorBoard(log_dir=directory)
    cm_writer = tf.summary.create_file_writer(directory + "/cm")
    logging_seconds = []

    def log_confusion_matrix(epoch, logs):
        started = time.perf_counter()
        predicted = np.argmax(model.predict(test_images, verbose=0), axis=1)
        cm = sklearn.metrics.confusion_matrix(test_labels, predicted)
        image = plot_to_image(confusion_figure(cm))
        with cm_writer.as_default():
            tf.summary.image("Confusion Matrix", image, step=epoch)
        logging_seconds.append(time.perf_counter() - started)

    history = model.fit(
        train_images,
        train_labels,
        epochs=epochs,
        verbose=0,
        callbacks=[board, keras.callbacks.LambdaCallback(on_epoch_end=log_confusion_matrix)],
        validation_data=(test_images, test_labels),
    )
    print(json.dumps({"test_accuracy": history.history["val_accuracy"][-1], "logging_seconds": logging_seconds}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["single", "grid", "plot", "train-cm"])
    parser.add_argument("--logdir", default="logs")
    parser.add_argument("--count", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    data = keras.datasets.fashion_mnist.load_data()
    (train_images, train_labels), _ = data
    if args.what == "single":
        single(train_images, args.logdir)
    elif args.what == "grid":
        grid(train_images, args.logdir, args.count)
    elif args.what == "plot":
        plot(train_images, train_labels, args.logdir)
    else:
        train_cm(data, args.logdir, args.epochs)


if __name__ == "__main__":
    main()
