"""Confusion matrices for anyone's classifier: labels and predictions checked (`labels`),
`log_confusion_matrix` (`matrix`), the matrix picture and gallery of mistakes (`figures`), and
the Keras callback (`keras_callback`, the one module here that imports Keras).

May import `events` and `images`; never `tutorial`, `logs` or `cli`.
"""
