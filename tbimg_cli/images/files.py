"""Image files as TensorBoard serves them: which format, what size, and whether the whole file is there.

A file is stored in a summary as it is only after a walk over all of it: every
PNG chunk's CRC up to IEND, every JPEG marker segment and scan up to EOI,
every GIF block up to the trailer, and the pixel bytes a BMP header promises.
So a file cut in half (a writer still busy, a copy that failed) is refused
rather than logged as if it were an image. The pixel count comes from the
header and is checked first, so a file claiming 100,000 x 100,000 pixels
costs nothing to refuse.
"""

from __future__ import annotations

import struct
import zlib

from tbimg_cli.errors import InputError
from tbimg_cli.events.png import PNG_SIGNATURE

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own limit (`PIL.Image.MAX_IMAGE_PIXELS`), below which it sees no bomb
STORED_FORMATS = ("png", "jpeg", "gif", "bmp")  # what TensorBoard's image plugin serves as it is


def image_format(data: bytes) -> str | None:
    """The stored format the bytes start like, or None."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    return None


def checked_size(data: bytes, kind: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of a whole, undamaged file of a stored format (`image_format`), within `max_pixels`.

    Raises:
        InputError: naming what is wrong: cut short, a failed CRC, an unknown block, too many pixels.
    """
    width, height = _CHECKS[kind](data)  # sizes are read from headers on the way; nothing is decoded
    check_pixels(width, height, max_pixels)
    return width, height


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"the image header gives a size of {width}x{height} pixels")
    if width * height > max_pixels:
        raise InputError(
            f"the image header claims {width:,} x {height:,} pixels, more than the {max_pixels:,} allowed "
            "(--max-pixels); refused before decoding"
        )


def _png_checked(raw: bytes) -> tuple[int, int]:
    """Every chunk's length and CRC, from IHDR to IEND."""
    data, size, position, chunk_header = memoryview(raw), len(raw), 8, struct.Struct(">I4s")
    if size < 33 or raw[12:16] != b"IHDR":
        raise InputError("the PNG file is cut short or damaged: no IHDR header")
    width, height = struct.unpack_from(">II", data, 16)
    while True:
        if position + 12 > size:
            raise InputError(f"the PNG file is cut short: it ends at byte {size:,}, before its IEND chunk")
        length, kind = chunk_header.unpack_from(data, position)
        end = position + 12 + length
        if end > size:
            name = kind.decode("latin-1")
            missing = f"{end - size:,} of {length + 12:,} bytes"
            raise InputError(f"the PNG file is cut short: its {name} chunk lacks {missing}")
        (stored,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(data[position + 4 : end - 4]) != stored:
            name = kind.decode("latin-1")
            raise InputError(f"the PNG file is damaged: chunk {name} at byte {position:,} fails its CRC check")
        if kind == b"IEND":
            return width, height
        position = end


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_checked(raw: bytes) -> tuple[int, int]:
    """Every marker segment, and every scan's entropy-coded data, up to EOI."""
    size, position = len(raw), 2
    dimensions: tuple[int, int] | None = None
    while True:
        if position + 2 > size or raw[position] != 0xFF:
            raise InputError(f"the JPEG file is cut short or damaged at byte {position:,}: no marker where one belongs")
        marker = raw[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:  # EOI
            if dimensions is None:
                raise InputError("the JPEG file has no frame header (SOF): no image in it")
            return dimensions
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
            continue
        if position + 4 > size:
            break
        (length,) = struct.unpack_from(">H", raw, position + 2)
        end = position + 2 + length
        if length < 2 or end > size:
            break
        if marker in _SOF_MARKERS and length >= 7:
            height, width = struct.unpack_from(">HH", raw, position + 5)
            dimensions = (width, height)
        position = _scan_end(raw, end, size) if marker == 0xDA else end
    raise InputError(f"the JPEG file is cut short: it ends at byte {size:,}, before its EOI marker")


def _scan_end(raw: bytes, position: int, size: int) -> int:
    """Where a scan's entropy-coded data ends: at the first marker that is not stuffing or a restart."""
    while True:
        position = raw.find(b"\xff", position)
        if position < 0 or position + 1 >= size:
            raise InputError(f"the JPEG file is cut short: it ends at byte {size:,}, inside image data, before EOI")
        following = raw[position + 1]
        if following == 0 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            position += 1
            continue
        return position


def _gif_checked(raw: bytes) -> tuple[int, int]:
    """Every block of every frame, up to the trailer."""
    size = len(raw)
    if size < 13:
        raise InputError("the GIF file is cut short: no screen descriptor")
    width, height, flags = struct.unpack_from("<HHB", raw, 6)
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while position < size:
        block = raw[position]
        if block == 0x3B:
            return width, height
        if block == 0x21:
            position = _after_sub_blocks(raw, position + 2, size)
        elif block == 0x2C and position + 10 <= size:
            local = raw[position + 9]
            position += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
            position = _after_sub_blocks(raw, position, size)
        else:
            raise InputError(f"the GIF file is damaged: an unknown block at byte {position:,}")
    raise InputError(f"the GIF file is cut short: it ends at byte {size:,}, before its trailer")


def _after_sub_blocks(raw: bytes, position: int, size: int) -> int:
    while position < size:
        length = raw[position]
        position += 1 + length
        if length == 0:
            return position
    return size + 1  # past the end: reported by the caller's loop as cut short


def _bmp_checked(raw: bytes) -> tuple[int, int]:
    """The header, and enough bytes for the pixels it promises."""
    size = len(raw)
    file_size, pixels_at, header_size = struct.unpack_from("<I4xII", raw, 2)
    if header_size == 12:
        width, height, _, bits = struct.unpack_from("<HHHH", raw, 18)
        compression = 0
    elif size >= 34:
        width, height, _, bits, compression = struct.unpack_from("<iiHHI", raw, 18)
    else:
        raise InputError("the BMP file is cut short: its header is incomplete")
    height = abs(height)
    needed = pixels_at + (((bits * width + 31) // 32) * 4 * height if compression in (0, 3) else 1)
    if size < max(file_size, needed) or width <= 0:
        raise InputError(f"the BMP file is cut short: it has {size:,} bytes, its header promises {needed:,}")
    return width, height


_CHECKS = {"png": _png_checked, "jpeg": _jpeg_checked, "gif": _gif_checked, "bmp": _bmp_checked}
