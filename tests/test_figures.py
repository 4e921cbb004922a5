"""Figures: what they show, and `tbimg plot` end to end."""

from __future__ import annotations

import numpy as np
import pytest

from tbimg_cli.confusion import figures
from tbimg_cli.events.png import png_size
from tbimg_cli.images import figures as image_figures
from tbimg_cli.tutorial.data import CLASS_NAMES

from .helpers import decode_png, heavy_modules_after, load_run


def _cell_texts(fig):
    (ax, _colorbar_ax) = fig.axes
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}


def test_confusion_matrix_shows_row_fractions_with_a_matching_scale():
    matrix = np.zeros((10, 10), dtype=int)
    matrix[np.arange(10), np.arange(10)] = 90
    matrix[0, 6] = 10  # a tenth of T-shirts taken for Shirts
    matrix[9] = [0] * 9 + [0]  # a class with no samples must not divide by zero
    fig = figures.confusion_matrix_figure(matrix, CLASS_NAMES, "Epoch 3")
    texts = _cell_texts(fig)
    assert texts[(0, 0)].get_text() == "0.90" and texts[(0, 6)].get_text() == "0.10"
    assert texts[(1, 1)].get_text() == "1.00" and texts[(9, 9)].get_text() == "0.00"
    assert texts[(1, 1)].get_color() == "white" and texts[(0, 6)].get_color() == "black"
    image = fig.axes[0].images[0]
    assert image.norm.vmin == 0.0 and image.norm.vmax == 1.0  # the colour bar reads the same numbers
    assert np.isclose(image.get_array()[0, 6], 0.1)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == list(CLASS_NAMES)
    assert fig.axes[0].get_title() == "Epoch 3"


def test_confusion_matrix_labels_are_not_clipped():
    fig = figures.confusion_matrix_figure(np.eye(10, dtype=int) * 5, CLASS_NAMES, "t")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    for ax in fig.axes:
        for label in [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label]:
            box = label.get_window_extent(renderer)
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, label.get_text()


def test_grid_shape_is_square_ish():
    assert image_figures.grid_shape(25) == (5, 5)
    assert image_figures.grid_shape(10) == (3, 4)
    assert image_figures.grid_shape(1) == (1, 1)


def _find_scaled(pixels, image):
    """(top, left, scale) where `image` appears whole, each pixel an s x s square, or None."""
    for scale in range(1, 12):
        block = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
        first = pixels == block[0, 0]
        for top, left in zip(*np.nonzero(first.all(axis=-1) if first.ndim == 3 else first), strict=True):
            window = pixels[top : top + block.shape[0], left : left + block.shape[1]]
            if window.shape == block.shape and np.array_equal(window, block):
                return top, left, scale
    return None


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "rgb"])
def test_image_grid_shows_every_image_whole_with_its_title_above(colour):
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (6, 28, 28, 3) if colour else (6, 28, 28), dtype=np.uint8)
    titled = image_figures.image_grid_pixels(images, ["Shirt → T-shirt/top", "Bag", "$5", "Coat", "Dress", "Sneaker"])
    untitled = image_figures.image_grid_pixels(images, [""] * 6)
    assert titled.shape == untitled.shape and titled.shape[1] == 600  # 3 columns of 2 inches at 100 dpi
    text = np.any(titled != untitled, axis=-1)
    for image in images:
        shown = 255 - image if not colour else image  # grey: the tutorial's binary colour map, 0 is white
        found = _find_scaled(titled if colour else titled[..., 0], shown)
        assert found is not None
        top, left, scale = found
        height = width = 28 * scale
        assert not text[top : top + height, left : left + width].any()  # no title over an image
        assert text[max(0, top - 9 * scale) : top, left : left + width].any()  # its title, just above it
        if not colour:
            assert np.all(
                titled[top : top + height, left : left + width] == titled[top : top + height, left : left + width, :1]
            )


def test_plot_logs_one_png_of_the_figure(cli, data_dir):
    out = cli.json("plot", "--data-dir", data_dir)
    assert out["tags"] == ["Training data"] and out["images"] == 25  # images shown in the one figure
    assert out["run_dir"].startswith("logs/plots/")
    (event,) = load_run(out["run_dir"]).Tensors("Training data")
    width, height, png = event.tensor_proto.string_val
    pixels = decode_png(png)
    assert (int(width), int(height)) == png_size(png) == (pixels.shape[1], pixels.shape[0])
    assert int(width) == 1000  # 5 columns of 2 inches at 100 dpi, as the tutorial's 10-inch figure
    assert out["classes"][0] == "Ankle boot"


def test_plot_bad_input_writes_nothing(cli, data_dir):
    result = cli("plot", "--count", "0", "--data-dir", data_dir)
    assert result.exit_code == 1 and "at least 1" in result.stderr
    from pathlib import Path

    assert not Path("logs").exists()


def test_plot_imports_no_tensorflow(tmp_path, data_dir):
    heavy, proc = heavy_modules_after(["plot", "--data-dir", str(data_dir), "--logdir", str(tmp_path)])
    assert "Wrote" in proc.stdout, proc.stderr
    assert "tensorflow" not in heavy and "keras" not in heavy and "matplotlib" in heavy


@pytest.mark.parametrize("count", [1, 7])
def test_plot_counts(cli, data_dir, count):
    out = cli.json("plot", "--count", count, "--split", "test", "--data-dir", data_dir)
    assert len(out["classes"]) == count


def _rgb(png: bytes):
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)


@pytest.mark.parametrize("classes", [3, 10, 40])
def test_a_matrix_drawn_again_over_its_saved_figure_shows_what_a_fresh_figure_shows(classes, monkeypatch):
    """Later steps redraw only the cells, their numbers and the title over the rest, saved once."""
    from tbimg_cli import shortcuts
    from tbimg_cli.confusion import figures

    rng = np.random.default_rng(classes)
    names = [f"class {i}" for i in range(classes)]
    first, matrix = (rng.integers(0, 60, (classes, classes)) + 300 * np.eye(classes, dtype=int) for _ in range(2))
    fresh = _rgb(image_figures.to_png(figures.confusion_matrix_figure(matrix, names, "step 2", "rows")))
    figures.confusion_matrix_png(first, names, "step 1", "rows")  # lays the figure out, with other numbers
    again = _rgb(figures.confusion_matrix_png(matrix, names, "step 2", "rows"))
    assert again.shape == fresh.shape
    # The cell numbers are pasted from bitmaps (a shortcut): a pixel off at most, the same ink.
    ink_fresh, ink_again = (255 - fresh).sum(), (255 - again).sum()
    assert abs(ink_fresh - ink_again) < 0.002 * ink_fresh
    assert (fresh != again).any(axis=-1).mean() < 0.03
    monkeypatch.setenv(shortcuts.DISABLE_VARIABLE, "1")  # the way back: every number drawn by its artist
    drawn = _rgb(figures.confusion_matrix_png(matrix, names, "step 2", "rows"))
    assert np.array_equal(drawn, fresh)
