"""The seed's tutorial on Fashion-MNIST: the data (`data`, `download`), `single`/`grid`/`plot`
(`summaries`), and `train-cm` (`train`, with the model and TensorFlow in `classifier`).

The only TensorFlow importer besides the Keras callback. May import every concern but `cli`.
"""
