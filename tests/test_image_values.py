"""Every kind of image `log_images` and `tbimg log` take, the value rules, and the whole-file checks."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from tbimg_cli.errors import InputError, InputTypeError
from tbimg_cli.images import values as image_values
from tbimg_cli.images.files import checked_size, image_format

from .helpers import REPO, decode_png

RNG = np.random.default_rng(7)
RGB = (RNG.random((24, 32, 3)) * 255).astype(np.uint8)


def encoded_file(fmt: str, pixels=RGB, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def pixels_of(image: image_values.EncodedImage) -> np.ndarray:
    return decode_png(image.data)


# The value rules, row by row


def test_uint8_pixels_are_kept_as_they_are():
    (image,) = image_values.encode(RGB)
    assert (image.width, image.height, image.format) == (32, 24, "png")
    assert np.array_equal(pixels_of(image), RGB)


def test_uint16_stays_16_bit():
    grey = (np.arange(24 * 32).reshape(24, 32) * 85).astype(np.uint16)
    (image,) = image_values.encode(grey)
    assert image.data[24] == 16  # IHDR bit depth
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(image.data))), grey)


def test_16_bit_colour_samples_are_big_endian_in_the_file():
    rgb16 = (RNG.random((5, 6, 3)) * 65535).astype(np.uint16)
    (image,) = image_values.encode(rgb16)
    idat_length = struct.unpack(">I", image.data[33:37])[0]
    rows = np.frombuffer(zlib.decompress(image.data[41 : 41 + idat_length]), np.uint8).reshape(5, 1 + 6 * 3 * 2)
    assert rows[:, 0].tolist() == [0, 2, 2, 2, 2]  # the first row unfiltered, the others "Up"
    unfiltered = np.cumsum(rows[:, 1:], axis=0, dtype=np.uint8)  # "Up" undone: bytes wrap modulo 256
    assert np.array_equal(unfiltered.view(">u2").reshape(5, 6, 3), rgb16)


def test_bool_is_0_and_255():
    mask = np.array([[True, False], [False, True]])
    assert np.array_equal(pixels_of(image_values.encode(mask)[0]), [[255, 0], [0, 255]])


def test_floats_in_0_1_are_scaled_as_tf_summary_image_does():
    values = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    assert pixels_of(image_values.encode(values)[0]).tolist() == [[0, 63, 127, 255]]
    assert pixels_of(image_values.encode(values.astype(np.float16))[0]).tolist() == [[0, 63, 127, 255]]


def test_floats_outside_0_1_are_an_error_that_names_the_way_out():
    with pytest.raises(InputError, match=r"span \[-1, 2\].*value_range"):
        image_values.encode(np.array([[-1.0, 2.0]]))


def test_value_range_maps_low_to_0_and_high_to_255():
    values = np.array([[-1.0, 0.0, 1.0, 3.0]])
    assert pixels_of(image_values.encode(values, value_range=(-1, 1))[0]).tolist() == [[0, 127, 255, 255]]
    assert pixels_of(image_values.encode(values, value_range="auto")[0]).tolist() == [[0, 63, 127, 255]]
    twelve_bit = np.array([[0, 4095]], np.int32)
    assert pixels_of(image_values.encode(twelve_bit, value_range=(0, 4095))[0]).tolist() == [[0, 255]]


def test_a_constant_image_with_auto_range_is_black_not_nan():
    assert pixels_of(image_values.encode(np.full((2, 2), 7.5), value_range="auto")[0]).max() == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinity_is_an_error(bad):
    values = np.zeros((3, 3))
    values[1, 1] = bad
    with pytest.raises(InputError, match="NaN or infinity in 1 of 9 values"):
        image_values.encode(values)
    with pytest.raises(InputError, match="NaN or infinity"):
        image_values.encode(values, value_range="auto")


def test_other_integers_within_0_255_are_uint8_and_beyond_are_an_error():
    assert pixels_of(image_values.encode(np.array([[0, 200]], np.int64))[0]).tolist() == [[0, 200]]
    with pytest.raises(InputError, match=r"int64 images must hold values in 0\.\.255.*span 0\.\.300"):
        image_values.encode(np.array([[0, 300]], np.int64))


@pytest.mark.parametrize("option", [{"layout": "WHC"}, {"value_range": (1, 1)}, {"value_range": "minmax"}])
def test_bad_options_are_refused(option):
    with pytest.raises(InputError):
        image_values.check_rules(option.get("layout", "auto"), option.get("value_range"))


# Shapes and layouts


@pytest.mark.parametrize(
    ("shape", "layout", "samples", "size"),
    [
        ((24, 32), "auto", 1, (32, 24)),
        ((24, 32, 3), "auto", 1, (32, 24)),
        ((24, 32, 1), "auto", 1, (32, 24)),
        ((5, 24, 32), "auto", 5, (32, 24)),  # N grey images (masks)
        ((3, 24, 32), "auto", 3, (32, 24)),  # numpy keeps channels last: 3 grey images
        ((3, 24, 32), "CHW", 1, (32, 24)),
        ((5, 24, 32, 4), "auto", 5, (32, 24)),
        ((5, 3, 24, 32), "auto", 5, (32, 24)),  # the channel axis can only be axis 1
        ((5, 3, 24, 32), "NCHW", 5, (32, 24)),
        ((24, 32), "HW", 1, (32, 24)),
    ],
)
def test_layouts(shape, layout, samples, size):
    encoded = image_values.encode(np.zeros(shape, np.uint8), layout=layout)
    assert len(encoded) == samples
    assert {(image.width, image.height) for image in encoded} == {size}


def test_channels_first_is_transposed_to_the_same_pixels():
    chw = np.ascontiguousarray(RGB.transpose(2, 0, 1))
    assert np.array_equal(pixels_of(image_values.encode(chw, layout="CHW")[0]), RGB)
    nchw = np.stack([chw, chw])
    assert all(np.array_equal(pixels_of(image), RGB) for image in image_values.encode(nchw, layout="NCHW"))


def test_a_framework_tensor_is_read_through_numpy_asarray():
    tf = pytest.importorskip("tensorflow")
    (image,) = image_values.encode(tf.constant(RGB))
    assert np.array_equal(pixels_of(image), RGB)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 2, 3, 4, 5), "2 to 4 dimensions"),
        ((8, 8, 2), "1, 3 or 4 channels"),
        ((2, 8, 8, 2), "1, 3 or 4 channels"),
        ((0, 8, 8), "empty"),
        ((8, 0), "at least 1x1"),
    ],
)
def test_shapes_that_are_no_images_are_errors(shape, message):
    with pytest.raises(InputError, match=message):
        image_values.encode(np.zeros(shape, np.uint8))


def test_a_layout_that_does_not_fit_the_array_is_an_error():
    with pytest.raises(InputError, match="layout NCHW needs 4 dimensions"):
        image_values.encode(np.zeros((3, 8, 8), np.uint8), layout="NCHW")


def test_objects_and_strings_are_no_images():
    with pytest.raises(InputTypeError, match="cannot read an array of"):
        image_values.encode(np.array([["a", "b"]]))
    with pytest.raises(InputTypeError):
        image_values.encode({"not": "an image"})


# Other in-memory kinds


@pytest.mark.parametrize(
    ("mode", "channels"), [("L", None), ("RGB", 3), ("RGBA", 4), ("P", 3), ("LA", 4), ("CMYK", 3), ("1", None)]
)
def test_pillow_images_of_every_common_mode(mode, channels):
    image = Image.fromarray(RGB).convert(mode)
    pixels = pixels_of(image_values.encode(image)[0])
    assert pixels.shape[:2] == (24, 32) and (pixels.shape[2] if pixels.ndim == 3 else None) == channels


def test_a_16_bit_pillow_image_stays_16_bit():
    grey = (np.arange(12).reshape(3, 4) * 5000).astype(np.uint16)
    (image,) = image_values.encode(Image.fromarray(grey))
    assert image.data[24] == 16


def test_a_matplotlib_figure_is_drawn_through_savefig():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [1, 0])
    (image,) = image_values.encode(figure)
    assert (image.width, image.height, image.format) == (100, 50, "png")
    assert pixels_of(image).std() > 0


def test_a_sequence_mixes_kinds_as_samples_of_one_summary(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(encoded_file("JPEG"))
    encoded = image_values.encode([RGB, str(path), path.read_bytes(), Image.fromarray(RGB)])
    assert [image.format for image in encoded] == ["png", "jpeg", "jpeg", "png"]


def test_a_snapshot_is_not_changed_by_the_caller_reusing_its_buffer():
    buffer = RGB.copy()
    copied = image_values.snapshot(buffer)
    buffer[:] = 0
    assert np.array_equal(pixels_of(image_values.encode(copied)[0]), RGB)


# Files


@pytest.mark.parametrize(("fmt", "kind"), [("PNG", "png"), ("JPEG", "jpeg"), ("GIF", "gif"), ("BMP", "bmp")])
def test_stored_formats_are_kept_byte_for_byte(fmt, kind):
    data = encoded_file(fmt)
    image = image_values.image_file(data)
    assert (image.format, image.width, image.height) == (kind, 32, 24)
    assert image.data == data


def test_progressive_jpeg_and_animated_gif_pass_their_checks():
    assert image_values.image_file(encoded_file("JPEG", progressive=True)).format == "jpeg"
    frames = [Image.fromarray(RGB), Image.fromarray(255 - RGB)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert image_values.image_file(buffer.getvalue()).format == "gif"


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF"])
def test_other_formats_become_pngs_of_the_same_pixels(fmt):
    image = image_values.image_file(encoded_file(fmt, lossless=True) if fmt == "WEBP" else encoded_file(fmt))
    assert image.format == "png"
    assert np.array_equal(pixels_of(image), RGB)


@pytest.mark.parametrize(
    ("high", "shown"),
    [(np.float32(1.0000001), "1.0000001"), (1.0000000000000002, "1.0000000000000002"), (3.25, "3.25")],
)
def test_the_out_of_range_value_is_shown_as_it_is_not_rounded_into_range(high, shown):
    values = np.array([[0.01248, high]], dtype=np.asarray(high).dtype)
    with pytest.raises(InputError) as raised:
        image_values.encode(values)
    assert f"these span [0.01248, {shown}]" in str(raised.value)


def test_a_float_tiff_is_mapped_by_value_range_as_an_array_is():
    values = np.linspace(-1.0, 3.0, 24 * 20, dtype=np.float32).reshape(24, 20)
    data = encoded_file("TIFF", values)
    with pytest.raises(InputError, match="value_range"):
        image_values.image_file(data)  # floats outside [0, 1]: the message names the way out
    for value_range in [(-1.0, 3.0), "auto"]:
        image = image_values.image_file(data, value_range=value_range)
        (as_array,) = image_values.encode(values, value_range=value_range)
        assert image.format == "png" and np.array_equal(pixels_of(image), pixels_of(as_array))
    (loaded,) = image_values.load_bytes(data, value_range=(-1.0, 3.0))[""]
    assert np.array_equal(pixels_of(loaded), pixels_of(image_values.encode(values, value_range=(-1.0, 3.0))[0]))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
@pytest.mark.parametrize("keep", [0.5, -1])
def test_a_cut_file_is_refused(fmt, keep):
    data = encoded_file(fmt)
    cut = data[: int(len(data) * keep)] if keep > 0 else data[:-1]
    with pytest.raises(InputError, match=r"cut short|damaged"):
        image_values.image_file(cut)


def test_a_png_with_a_bad_crc_is_refused_naming_the_chunk():
    data = bytearray(encoded_file("PNG"))
    data[50] ^= 0xFF  # inside IDAT
    with pytest.raises(InputError, match="chunk IDAT at byte 33 fails its CRC check"):
        image_values.image_file(bytes(data))


def test_empty_and_text_files_are_refused():
    with pytest.raises(InputError, match="empty"):
        image_values.image_file(b"")
    with pytest.raises(InputError, match="not an image tbimg can read"):
        image_values.image_file(b"just some notes, saved as notes.png\n")


def bomb_png(width=100_000, height=100_000) -> bytes:
    """A small, valid PNG whose header claims `width` x `height` pixels (its IDAT holds a little of them)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def test_a_png_claiming_100000_by_100000_pixels_is_refused_before_decoding():
    with pytest.raises(InputError, match=r"claims 100,000 x 100,000 pixels.*refused before decoding"):
        image_values.image_file(bomb_png())
    assert image_values.image_file(bomb_png(2, 2)).width == 2
    with pytest.raises(InputError, match="more than the 3 allowed"):
        image_values.image_file(bomb_png(2, 2), max_pixels=3)


def test_the_bomb_is_refused_in_little_memory(tmp_path):
    """In a fresh interpreter, refusing it raises peak memory by less than 20 MB (decoding would take 10 GB)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    script = (
        "import resource, sys\n"
        "from tbimg_cli.images import values as image_values\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    image_values.load_file({str(path)!r})\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    message, grown_kib = proc.stdout.splitlines()
    assert "claims 100,000 x 100,000" in message
    assert int(grown_kib) < 20 * 1024


def test_a_format_pillow_decodes_is_checked_for_pixels_before_decoding():
    with pytest.raises(InputError, match="claims 4,000 x 3,000 pixels"):
        image_values.image_file(encoded_file("TIFF", np.zeros((3000, 4000), np.uint8)), max_pixels=1_000_000)


def test_sizes_come_from_headers_of_every_stored_format():
    for fmt in ("PNG", "JPEG", "GIF", "BMP"):
        data = encoded_file(fmt)
        kind = image_format(data)
        assert kind is not None and checked_size(data, kind) == (32, 24)


# Arrays in files


def test_npy_and_npz_files(tmp_path):
    np.save(tmp_path / "masks.npy", RNG.random((4, 8, 8)) > 0.5)
    assert [len(images) for images in image_values.load_file(tmp_path / "masks.npy").values()] == [4]
    np.savez(tmp_path / "pair.npz", inputs=np.zeros((2, 8, 8, 3), np.uint8), outputs=np.ones((8, 8)))
    loaded = image_values.load_file(tmp_path / "pair.npz")
    assert {name: len(images) for name, images in loaded.items()} == {"inputs": 2, "outputs": 1}


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((1, 2, 3, 4, 5), np.uint8), "2 to 4 dimensions"),
        (np.array([{"a": 1}, None], dtype=object), "Python objects"),
        (np.array([[np.nan, 0.5]]), "NaN or infinity"),
        (np.zeros((8, 8, 2), np.uint8), "1, 3 or 4 channels"),
    ],
)
def test_bad_arrays_in_files(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array, allow_pickle=True)
    with pytest.raises(InputError, match=message):
        image_values.load_file(tmp_path / "bad.npy")


def test_a_cut_npy_file_is_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 16, 16), np.uint8))
    data = (tmp_path / "a.npy").read_bytes()
    with pytest.raises(InputError, match="not a readable numpy array file"):
        image_values.load_bytes(data[: len(data) // 2])


def test_the_value_rules_are_documented_in_one_table_everywhere():
    for document in ("README.md", "docs/api.md"):
        assert image_values.VALUE_RULES in (REPO / document).read_text(), document
