"""Matplotlib figures rendered once to PNG bytes (Agg backend, no display needed).

`*_figure` functions build a figure (tests look inside it); `*_png` renders it
once with Agg, and the writer stores those bytes as they are. Figures are made
outside pyplot, so nothing global keeps them alive and none needs closing.
"""

from __future__ import annotations

import io
import math


def _figure(width_inches: float, height_inches: float):
    """A figure outside pyplot: no global state, so the training callback can draw
    from a worker thread, and nothing to close but the figure itself."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_inches, height_inches))
    FigureCanvasAgg(fig)
    return fig


def to_png(fig, dpi: int = 100) -> bytes:
    """Render once with Agg; these bytes are what the event file stores."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns of a square-ish grid (25 -> 5x5, 10 -> 3x4)."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def image_grid_png(images, titles: list[str], cell_inches: float = 2.0) -> bytes:
    return to_png(image_grid_figure(images, titles, cell_inches))


def image_grid_figure(images, titles: list[str], cell_inches: float = 2.0):
    """The tutorial's figure: images in a grid, each titled and framed, binary colormap, no ticks.

    Drawn as one mosaic in a single Axes rather than one subplot per image:
    it looks the same, and 25 subplots cost more than everything else the
    `plot` command does (each Axes builds its own axis and tick machinery).
    """
    import numpy as np
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    rows, columns = grid_shape(len(images))
    side = images.shape[1]
    gap, title_room = max(2, side // 5), max(3, side // 3)  # whole image pixels, so every row is alike
    pitch_x, pitch_y = side + gap, side + title_room
    mosaic = np.zeros((rows * pitch_y + gap // 2, columns * pitch_x), dtype=np.uint8)
    frames, anchors = [], []
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        top, left = row * pitch_y + title_room, column * pitch_x + gap // 2
        mosaic[top : top + side, left : left + side] = image
        frames.append(Rectangle((left - 0.5, top - 0.5), side, side))
        anchors.append((left + side / 2 - 0.5, top - 1.5))
    height, width = mosaic.shape
    fig = _figure(columns * cell_inches, columns * cell_inches * height / width)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(mosaic, cmap="binary", vmin=0, vmax=255, interpolation="nearest")
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="black", linewidth=0.8))
    for (x, y), title in zip(anchors, titles):
        ax.text(x, y, title, ha="center", va="bottom", fontsize=10)
    ax.set_axis_off()
    return fig


def confusion_matrix_png(matrix, class_names, title: str) -> bytes:
    return to_png(confusion_matrix_figure(matrix, class_names, title))


def confusion_matrix_figure(matrix, class_names, title: str):
    """Row-normalised confusion matrix whose colour scale shows the same numbers as the cells.

    The tutorial colours by raw counts but prints normalised values, so its
    colour bar disagrees with the text; here both are the row fraction, 0 to 1.
    """
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = len(class_names)
    fig = _figure(8.5, 8)
    fig.subplots_adjust(left=0.17, right=0.9, bottom=0.17, top=0.94)
    ax = fig.add_subplot()
    shown = ax.imshow(normalised, interpolation="nearest", cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_title(title)
    ticks = np.arange(size)
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    for row in range(size):
        for column in range(size):
            value = normalised[row, column]
            colour = "white" if value > 0.5 else "black"
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", color=colour, fontsize=9)
    return fig


def misclassified_png(images, titles: list[str]) -> bytes:
    """A gallery of mistakes, each titled "true → predicted"."""
    return image_grid_png(images, titles, cell_inches=2.2)
