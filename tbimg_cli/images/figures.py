"""Grids of images with titles, and matplotlib figures as PNG bytes (Agg, no display needed).

Figures are made outside pyplot (`new_figure`), so nothing global keeps them
alive and none needs closing; `to_png` renders one. Image grids (the tutorial's
`plot`, the confusion matrix's gallery of mistakes) are one mosaic and a title
per image: `image_grid_pixels` draws them onto the renderer directly. The
writer stores the bytes as they are.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure
    from numpy.typing import NDArray


def new_figure(width_inches: float, height_inches: float) -> Figure:
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
    from tbimg_cli.events.png import encode_pngs

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
