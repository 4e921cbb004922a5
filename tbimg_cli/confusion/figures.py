"""Pictures drawn with matplotlib's Agg renderer and turned into PNG bytes once (no display needed).

The confusion matrix is a matplotlib Figure: `confusion_matrix_figure` builds
it (tests look inside) and `to_png` renders it. Figures are made outside
pyplot, so nothing global keeps them alive and none needs closing. Image
grids (`plot`, the gallery of mistakes) are one mosaic and a title per image:
`image_grid_pixels` draws them onto the renderer directly. The writer stores
the bytes as they are.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike, NDArray


def _figure(width_inches: float, height_inches: float) -> Figure:
    """A figure outside pyplot: no global state, so the training callback can draw
    from a worker thread, and nothing to close but the figure itself."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_inches, height_inches))
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render once with Agg; these bytes are what the event file stores."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns of a square-ish grid (25 -> 5x5, 10 -> 3x4)."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def image_grid_png(images: NDArray[np.uint8], titles: Sequence[str], cell_inches: float = 2.0, dpi: int = 100) -> bytes:
    from tbimg_cli.png import encode_pngs

    return encode_pngs(image_grid_pixels(images, titles, cell_inches, dpi)[None])[0]


def image_grid_pixels(
    images: NDArray[np.uint8], titles: Sequence[str], cell_inches: float = 2.0, dpi: int = 100
) -> NDArray[np.uint8]:
    """The tutorial's figure as RGB pixels: images in a grid, each framed, titled above, no axes.

    `images` is uint8, (N, H, W) for grey (drawn with the tutorial's binary
    colour map: 0 is white) or (N, H, W, 3) for colour; each is scaled by a
    whole number, so every image pixel is a sharp square. The mosaic is laid
    out with numpy and the titles set by matplotlib in its fonts
    (`shortcuts.draw_titles`). Titles are plain text (a "$" in a class name is
    a dollar sign).
    """
    import numpy as np

    from tbimg_cli.shortcuts import draw_titles

    rows, columns = grid_shape(len(images))
    side_y, side_x = images.shape[1], images.shape[2]
    side = max(side_x, side_y)
    gap, title_room = max(2, side // 5), max(3, side // 3)  # in image pixels, so every row is alike
    pitch_x, pitch_y = side_x + gap, side_y + title_room
    width = round(columns * cell_inches * dpi)  # the tutorial's figure: 2 inches a column at 100 dpi
    scale = max(1, width // (columns * pitch_x))
    mosaic_width, mosaic_height = columns * pitch_x * scale, (rows * pitch_y + gap // 2) * scale
    height = round(width * mosaic_height / mosaic_width)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x0, y0 = (width - mosaic_width) // 2, (height - mosaic_height) // 2
    frame = max(1, round(0.8 * dpi / 72))  # the tutorial's 0.8-point frame
    grey = images.ndim == 3
    placed = []
    for i, (image, title) in enumerate(zip(images, titles, strict=True)):
        row, column = divmod(i, columns)
        top, left = y0 + (row * pitch_y + title_room) * scale, x0 + (column * pitch_x + gap // 2) * scale
        block = np.repeat(np.repeat(255 - image if grey else image, scale, axis=0), scale, axis=1)
        height_px, width_px = block.shape[:2]
        canvas[top - frame : top + height_px + frame, left - frame : left + width_px + frame] = 0
        canvas[top : top + height_px, left : left + width_px] = block[..., None] if grey else block
        # The title's box ends 1.5 image pixels above the frame.
        placed.append((left + width_px / 2, top - frame - 1.5 * scale, title))
    return draw_titles(canvas, placed, TITLE_FONT_SIZE, dpi)


TITLE_FONT_SIZE = 10


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

    from tbimg_cli.png import encode_pngs

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
        self.fig = fig = _figure(inches + 0.5, inches)
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
