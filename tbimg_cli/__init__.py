"""tbimg: Fashion-MNIST images into TensorBoard, from the command line.

Kept import-free so that `tbimg --help` starts in a fraction of a second.
"""

__version__ = "0.1.0"
