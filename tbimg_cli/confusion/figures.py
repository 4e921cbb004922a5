"""The confusion matrix as a picture: a matplotlib Figure (`confusion_matrix_figure`, which tests
look inside), drawn fast when the same classes come again (`confusion_matrix_png`), and the gallery of
mistakes (`misclassified_png`, an image grid titled "true → predicted").
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tbimg_cli.images.figures import image_grid_png, new_figure

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike, NDArray


# Past this many classes the cells are too small to carry their numbers.
MAX_CLASSES_WITH_CELL_TEXT = 30
# Laid-out figures kept for reuse: a training run logs the same classes every epoch.
CACHED_FIGURES = 4


def confusion_matrix_png(matrix: ArrayLike, class_names: Sequence[str], title: str, normalize: str = "rows") -> bytes:
    """The figure of `confusion_matrix_figure` as PNG bytes, drawn fast when the same classes come again.

    Building a figure (axes, ticks, colour bar) costs more than drawing it, and
    drawing the axes, labels and colour bar again costs more than the cells:
    so the figure for a set of class names is laid out and drawn once, and
    later steps draw only what changes (the cells, their numbers, the title)
    over the saved pixels of the rest, with matplotlib's own blitting. The
    pixels are those a fresh figure gives (the tests compare them).
    """
    import numpy as np

    from tbimg_cli.events.png import encode_pngs

    shown, vmax = _cells(matrix, normalize)
    key = (tuple(map(str, class_names)), normalize, vmax)
    with _cache_lock:
        template = _cache.pop(key, None) or _MatrixTemplate(list(map(str, class_names)), normalize, vmax)
        _cache[key] = template  # most recently used last
        while len(_cache) > CACHED_FIGURES:
            del _cache[next(iter(_cache))]
        pixels = template.draw(shown, title)
    return encode_pngs(np.ascontiguousarray(pixels)[None])[0]


def confusion_matrix_figure(
    matrix: ArrayLike, class_names: Sequence[str], title: str, normalize: str = "rows"
) -> Figure:
    """A confusion matrix whose colour scale shows the same numbers as the cells.

    `normalize="rows"`: each cell is the fraction of its true class (0 to 1);
    the tutorial colours by raw counts but prints fractions, so its colour bar
    disagrees with the text. `"none"`: cells and colour bar are counts. Up to
    `MAX_CLASSES_WITH_CELL_TEXT` classes each cell shows its number; past that
    the figure grows with the classes (to a limit) and relies on colour, and
    tick labels thin out so that they never overlap.
    """
    shown, vmax = _cells(matrix, normalize)
    template = _MatrixTemplate(list(map(str, class_names)), normalize, vmax, animated=False)
    template.fill(shown, title)
    return template.fig


def _cells(matrix: ArrayLike, normalize: str) -> tuple[NDArray[np.float64], float]:
    """What the cells show, and the top of the colour scale."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    if normalize == "rows":
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0), 1.0
    return counts, max(1.0, float(counts.max()))


class _MatrixTemplate:
    """One laid-out confusion-matrix figure: axes, ticks, labels and colour bar for a set of classes.

    With `animated` (the default), the cells, their numbers and the title are
    left out of the figure's own drawing; `draw` paints them over the saved
    pixels of the rest.
    """

    def __init__(self, class_names: list[str], normalize: str, vmax: float, *, animated: bool = True) -> None:
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from tbimg_cli.shortcuts import TextStamps

        size = len(class_names)
        self.vmax = vmax
        self.cell_format = "{:.2f}" if normalize == "rows" else "{:.0f}"
        label = "fraction of the true class" if normalize == "rows" else "examples"
        inches = min(24.0, max(8.0, 0.3 * size))
        self.fig = fig = new_figure(inches + 0.5, inches)
        self.canvas = FigureCanvasAgg(fig)
        margin = min(0.17, 1.6 / inches)  # room for labels of about 16 characters at any size
        fig.subplots_adjust(left=margin, right=0.9, bottom=margin, top=1 - 0.48 / inches)
        self.ax = ax = fig.add_subplot()
        self.image = ax.imshow(np.zeros((size, size)), interpolation="nearest", cmap="Blues", vmin=0.0, vmax=vmax)
        fig.colorbar(self.image, ax=ax, fraction=0.046, pad=0.04, label=label)
        self.title = ax.set_title(" ")
        every = max(1, -(-size // 80))  # at most about 80 tick labels per axis
        ticks = np.arange(0, size, every)
        names = [class_names[int(i)] for i in ticks]
        font = 10 if size <= MAX_CLASSES_WITH_CELL_TEXT else max(4, 10 - size // 40)
        rotation = 45 if size <= MAX_CLASSES_WITH_CELL_TEXT else 90
        ax.set_xticks(ticks, names, rotation=rotation, ha="right", rotation_mode="anchor", fontsize=font)
        ax.set_yticks(ticks, names, fontsize=font)
        ax.set_xlabel("Predicted label")
        ax.set_ylabel("True label")
        self.texts = []
        if size <= MAX_CLASSES_WITH_CELL_TEXT:
            fontsize = 9 if size <= 12 else max(5, 9 - (size - 12) // 4)
            self.texts = [
                [ax.text(column, row, "", ha="center", va="center", fontsize=fontsize) for column in range(size)]
                for row in range(size)
            ]
        # Drawn per step, in the order a full drawing uses: the cells, the frame over them, the numbers, the title.
        self.cell_texts = [text for row in self.texts for text in row]
        self.animated = [self.image, *ax.spines.values(), *self.cell_texts, self.title]
        self.stamps = TextStamps(*self.canvas.get_width_height(), fig.dpi)
        self.background = None
        if animated:
            for artist in self.animated:
                artist.set_animated(True)
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(fig.bbox)

    def fill(self, shown: NDArray[np.float64], title: str) -> None:
        self.image.set_data(shown)
        self.title.set_text(title)
        for row, texts in enumerate(self.texts):
            for column, text in enumerate(texts):
                value = shown[row, column]
                text.set_text(self.cell_format.format(value))
                text.set_color("white" if value > self.vmax / 2 else "black")

    def draw(self, shown: NDArray[np.float64], title: str) -> NDArray[np.uint8]:
        """RGB pixels of the figure showing `shown`, drawn over the saved rest."""
        import numpy as np

        self.fill(shown, title)
        canvas = self.canvas
        canvas.restore_region(self.background)
        for artist in [self.image, *self.ax.spines.values()]:
            self.ax.draw_artist(artist)
        pixels = np.asarray(canvas.buffer_rgba())
        self.stamps.draw(self.ax, self.cell_texts, pixels)
        self.ax.draw_artist(self.title)
        return pixels[..., :3]


_cache: dict[tuple[tuple[str, ...], str, float], _MatrixTemplate] = {}
_cache_lock = threading.Lock()


def misclassified_png(images: NDArray[np.uint8], titles: Sequence[str]) -> bytes:
    """A gallery of mistakes, each titled "true → predicted"."""
    return image_grid_png(images, titles, cell_inches=2.2)
