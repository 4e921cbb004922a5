"""A plain numpy training loop that logs images every epoch with `ImageLogger`, without ever waiting for them.

    pip install tbimg
    python docs/examples/numpy_training_loop.py [--data-dir DIR] [--logdir logs/numpy] [--epochs 5]
    tensorboard --logdir logs/numpy

Softmax regression on Fashion-MNIST, written out in numpy: no framework at all.
Each epoch logs, through one `ImageLogger` (encoded and written on background
threads, in call order):

- "weights": what each class's weights look for, one 28x28 image per class
  (floats of any range, so `value_range="auto"`);
- "hardest": the 16 test images the model is least sure of (uint8, as they are);
- "confidence": a matplotlib figure of the test set's confidence histogram.

`log` returns as soon as it has copied its arguments, so the loop can go on with
the next epoch while PNGs are encoded; `close` (here the `with` block's end)
waits until everything is on disk.
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TBIMG_DATA_DIR"), help="the Fashion-MNIST files")
    parser.add_argument("--logdir", default="logs/numpy")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    args = parser.parse_args()

    import numpy as np
    from matplotlib.figure import Figure

    from tbimg_cli import ImageLogger
    from tbimg_cli.tutorial import data

    train_images, train_labels = data.load("train", args.data_dir)
    test_images, test_labels = data.load("test", args.data_dir)
    x_train = train_images.reshape(len(train_images), -1) / 255
    x_test = test_images.reshape(len(test_images), -1) / 255
    one_hot = np.eye(10)[train_labels]
    weights, bias = np.zeros((784, 10)), np.zeros(10)
    rng = np.random.default_rng(0)

    with ImageLogger(args.logdir) as images:
        for epoch in range(args.epochs):
            for batch in np.array_split(rng.permutation(len(x_train)), max(1, len(x_train) // 128)):
                probabilities = softmax(x_train[batch] @ weights + bias)
                error = (probabilities - one_hot[batch]) / len(batch)
                weights -= args.learning_rate * x_train[batch].T @ error
                bias -= args.learning_rate * error.sum(axis=0)

            test_probabilities = softmax(x_test @ weights + bias)
            confidence = test_probabilities.max(axis=1)
            accuracy = (test_probabilities.argmax(axis=1) == test_labels).mean()
            images.log(
                "weights",
                weights.T.reshape(10, 28, 28),
                epoch,
                value_range="auto",
                description="Each class's weights: bright pixels count for the class, dark against it.",
            )
            images.log("hardest", test_images[np.argsort(confidence)[:16]], epoch)
            figure = Figure(figsize=(4, 3), dpi=80)
            axes = figure.add_subplot()
            axes.hist(confidence, bins=20, range=(0, 1))
            axes.set(title=f"epoch {epoch}: accuracy {accuracy:.3f}", xlabel="confidence", ylabel="test images")
            images.log("confidence", figure, epoch)
            print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f}")
    print(f"logged to {args.logdir}; view with: tensorboard --logdir {args.logdir}")


def softmax(logits):
    import numpy as np

    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


if __name__ == "__main__":
    main()
