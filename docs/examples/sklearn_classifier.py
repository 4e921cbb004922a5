"""A scikit-learn classifier's confusion matrix in TensorBoard, with `log_confusion_matrix` (no TensorFlow).

    pip install tbimg scikit-learn    # scikit-learn is this example's own need, not tbimg's
    python docs/examples/sklearn_classifier.py [--data-dir DIR] [--logdir logs/sklearn] [--passes 5]
    tensorboard --logdir logs/sklearn

A linear classifier learns Fashion-MNIST a pass at a time (`partial_fit`), and
after each pass the test set's matrix, table, gallery of mistakes and per-class
scalars are logged as one step. The same call works for PyTorch or JAX: pass
labels and predictions (or logits) as arrays on the CPU.
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TBIMG_DATA_DIR"), help="the Fashion-MNIST files")
    parser.add_argument("--logdir", default="logs/sklearn")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import SGDClassifier

    from tbimg_cli import log_confusion_matrix
    from tbimg_cli.tutorial import data

    train_images, train_labels = data.load("train", args.data_dir)
    test_images, test_labels = data.load("test", args.data_dir)
    x_train = train_images.reshape(len(train_images), -1) / 255
    x_test = test_images.reshape(len(test_images), -1) / 255
    classifier = SGDClassifier(loss="log_loss", random_state=0)
    for step in range(args.passes):
        classifier.partial_fit(x_train, train_labels, classes=np.arange(10))
        scores = classifier.decision_function(x_test)  # one logit per class
        log_confusion_matrix(args.logdir, test_labels, scores, step, class_names=data.CLASS_NAMES, images=test_images)
        print(f"pass {step + 1}: accuracy {(scores.argmax(axis=1) == test_labels).mean():.4f}")
    print(f"logged to {args.logdir}/cm; view with: tensorboard --logdir {args.logdir}")


if __name__ == "__main__":
    main()
