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
    """The tutorial's figure: images in a grid, each titled and framed, no ticks.

    `images` is uint8, (N, H, W) for grey (drawn with the tutorial's binary
    colormap) or (N, H, W, 3) for colour. Drawn as one mosaic in a single Axes
    rather than one subplot per image: it looks the same, and 25 subplots cost
    more than everything else the `plot` command does (each Axes builds its
    own axis and tick machinery).
    """
    import numpy as np
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    rows, columns = grid_shape(len(images))
    side_y, side_x = images.shape[1], images.shape[2]
    side = max(side_x, side_y)
    gap, title_room = max(2, side // 5), max(3, side // 3)  # whole image pixels, so every row is alike
    pitch_x, pitch_y = side_x + gap, side_y + title_room
    colour = images.ndim == 4
    mosaic = np.full((rows * pitch_y + gap // 2, columns * pitch_x, *images.shape[3:]), 255 if colour else 0, np.uint8)
    frames, anchors = [], []
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        top, left = row * pitch_y + title_room, column * pitch_x + gap // 2
        mosaic[top : top + side_y, left : left + side_x] = image
        frames.append(Rectangle((left - 0.5, top - 0.5), side_x, side_y))
        anchors.append((left + side_x / 2 - 0.5, top - 1.5))
    height, width = mosaic.shape[:2]
    fig = _figure(columns * cell_inches, columns * cell_inches * height / width)
    ax = fig.add_axes((0, 0, 1, 1))
    if colour:
        ax.imshow(mosaic, interpolation="nearest")
    else:
        ax.imshow(mosaic, cmap="binary", vmin=0, vmax=255, interpolation="nearest")
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="black", linewidth=0.8))
    for (x, y), title in zip(anchors, titles):
        ax.text(x, y, title, ha="center", va="bottom", fontsize=10)
    ax.set_axis_off()
    return fig


# Past this many classes the cells are too small to carry their numbers.
MAX_CLASSES_WITH_CELL_TEXT = 30


def confusion_matrix_png(matrix, class_names, title: str, normalize: str = "rows") -> bytes:
    return to_png(confusion_matrix_figure(matrix, class_names, title, normalize))


def confusion_matrix_figure(matrix, class_names, title: str, normalize: str = "rows"):
    """A confusion matrix whose colour scale shows the same numbers as the cells.

    `normalize="rows"`: each cell is the fraction of its true class (0 to 1);
    the tutorial colours by raw counts but prints fractions, so its colour bar
    disagrees with the text. `"none"`: cells and colour bar are counts. Up to
    `MAX_CLASSES_WITH_CELL_TEXT` classes each cell shows its number; past that
    the figure grows with the classes (to a limit) and relies on colour, and
    tick labels thin out so that they never overlap.
    """
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    size = len(class_names)
    if normalize == "rows":
        totals = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        vmax, label, cell = 1.0, "fraction of the true class", "{:.2f}"
    else:
        shown = counts
        vmax, label, cell = max(1.0, float(counts.max())), "examples", "{:.0f}"
    inches = min(24.0, max(8.0, 0.3 * size))
    fig = _figure(inches + 0.5, inches)
    margin = min(0.17, 1.6 / inches)  # room for labels of about 16 characters at any size
    fig.subplots_adjust(left=margin, right=0.9, bottom=margin, top=1 - 0.48 / inches)
    ax = fig.add_subplot()
    image = ax.imshow(shown, interpolation="nearest", cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set_title(title)
    every = max(1, -(-size // 80))  # at most about 80 tick labels per axis
    ticks = np.arange(0, size, every)
    names = [str(class_names[i]) for i in ticks]
    font = 10 if size <= MAX_CLASSES_WITH_CELL_TEXT else max(4, 10 - size // 40)
    ax.set_xticks(ticks, names, rotation=45 if size <= MAX_CLASSES_WITH_CELL_TEXT else 90, ha="right",
                  rotation_mode="anchor", fontsize=font)  # fmt: skip
    ax.set_yticks(ticks, names, fontsize=font)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    if size <= MAX_CLASSES_WITH_CELL_TEXT:
        fontsize = 9 if size <= 12 else max(5, 9 - (size - 12) // 4)
        for row in range(size):
            for column in range(size):
                value = shown[row, column]
                colour = "white" if value > vmax / 2 else "black"
                ax.text(column, row, cell.format(value), ha="center", va="center", color=colour, fontsize=fontsize)
    return fig


def misclassified_png(images, titles: list[str]) -> bytes:
    """A gallery of mistakes, each titled "true → predicted"."""
    return image_grid_png(images, titles, cell_inches=2.2)
