"""The pixel size an image file announces in its header, read without decoding any pixel.

A decoder allocates what the header announces before it looks at the data: a 74-byte PNG may claim
50000 x 50000 pixels (7.5 GB as RGB). Reading the header first lets the replay source refuse such a frame
with a reason instead of decoding it. The formats are the ones the replay source serves (PNG, JPEG, BMP,
TIFF/BigTIFF), recognised by their signature, not by the file name, because OpenCV decodes by content too.

A small parser instead of Pillow's lazy ``Image.open``: Pillow refuses images above its own global
``MAX_IMAGE_PIXELS`` (a process-wide setting) before it reports their size, so the station's own limit
could not be applied above Pillow's, and no new dependency is needed for a few fixed header layouts.
"""

from __future__ import annotations

import struct

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers (baseline, progressive, lossless, arithmetic...): they carry the frame size.
# C4 (DHT), C8 (JPG extension) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
# TIFF field type -> (struct code, size): SHORT, LONG, LONG8 (BigTIFF).
_TIFF_TYPES = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def image_size(data: bytes) -> tuple[int, int]:
    """Return ``(width, height)`` as the image header announces it.

    Args:
        data: The file's bytes (only the header is looked at).

    Raises:
        ValueError: The data is not a PNG, JPEG, BMP or TIFF file, or its header is truncated or malformed;
            the message says which.

    """
    try:
        if data.startswith(_PNG_SIGNATURE):
            return _png_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"BM"):
            return _bmp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_size(data)
    except (struct.error, IndexError) as exc:  # a read past the end of the data
        raise ValueError("truncated image header") from exc
    raise ValueError("unrecognised image header (not PNG, JPEG, BMP or TIFF)")


def _png_size(data: bytes) -> tuple[int, int]:
    # The first chunk must be IHDR: length (4), type (4), width (4), height (4), ...
    _, tag, width, height = struct.unpack_from(">I4sII", data, 8)
    if tag != b"IHDR":
        raise ValueError("PNG without IHDR chunk")
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while True:
        if data[pos] != 0xFF:
            raise ValueError("malformed JPEG header (marker expected)")
        while data[pos] == 0xFF:  # markers may be preceded by any number of 0xFF fill bytes
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xDA:  # start of scan: compressed data follows, no frame header was seen
            raise ValueError("JPEG without frame header before its scan")
        (length,) = struct.unpack_from(">H", data, pos)
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, pos + 3)  # after length (2) and precision (1)
            return width, height
        if length < 2:
            raise ValueError("malformed JPEG header (segment length)")
        pos += length


def _bmp_size(data: bytes) -> tuple[int, int]:
    (dib_size,) = struct.unpack_from("<I", data, 14)
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack_from("<HH", data, 18)
        return width, height
    width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height)  # a negative height means rows are stored top-down


def _tiff_size(data: bytes) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    # The first image file directory (the page OpenCV decodes): its entries hold width and length.
    if big:
        (offset,) = struct.unpack_from(order + "Q", data, 8)
        (count,) = struct.unpack_from(order + "Q", data, offset)
        entry_size, first, value_at = 20, offset + 8, 12
    else:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, offset)
        entry_size, first, value_at = 12, offset + 2, 8
    found: dict[int, int] = {}
    for i in range(count):
        entry = first + i * entry_size
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT) and kind in _TIFF_TYPES:
            code, _ = _TIFF_TYPES[kind]
            (found[tag],) = struct.unpack_from(order + code, data, entry + value_at)
        if len(found) == 2:
            return found[_TIFF_WIDTH], found[_TIFF_HEIGHT]
    raise ValueError("TIFF without image width and length")
