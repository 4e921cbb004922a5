"""Figures: what they show, and `tbimg plot` end to end."""

from __future__ import annotations

import numpy as np
import pytest

from tbimg_cli import figures
from tbimg_cli.data import CLASS_NAMES
from tbimg_cli.writer import png_size

from .conftest import decode_png, heavy_modules_after, load_run


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
    assert figures.grid_shape(25) == (5, 5)
    assert figures.grid_shape(10) == (3, 4)
    assert figures.grid_shape(1) == (1, 1)


def test_image_grid_titles_and_shows_every_image():
    images = np.arange(6 * 28 * 28, dtype=np.uint32).reshape(6, 28, 28) % 251
    images = images.astype(np.uint8)
    fig = figures.image_grid_figure(images, [f"t{i}" for i in range(6)])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == [f"t{i}" for i in range(6)]
    assert not ax.axison  # no ticks, no axis lines
    mosaic = ax.images[0].get_array()
    for image in images:  # each image appears whole, unscaled, somewhere in the mosaic
        rows, cols = np.nonzero(mosaic == image[0, 0])
        assert any(np.array_equal(mosaic[r : r + 28, c : c + 28], image) for r, c in zip(rows, cols))
    # Titles sit above their image: 3x2 grid gives two rows of titles.
    assert len({round(t.get_position()[1]) for t in ax.texts}) == 2


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
