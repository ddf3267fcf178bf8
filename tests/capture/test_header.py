"""Header sizes against what the decoders write: OpenCV for the common layouts, Pillow for the variants."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from edge.capture.header import image_size

W, H = 37, 21  # odd, different sides: a swapped width/height shows


def encoded(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok
    return bytes(data.tobytes())


def pillow(fmt: str, mode: str = "RGB", **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (W, H)).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        encoded(".png", np.zeros((H, W, 3), np.uint8)),
        encoded(".png", np.zeros((H, W), np.uint16)),  # 16-bit grey
        encoded(".jpg", np.zeros((H, W, 3), np.uint8)),
        encoded(".jpg", np.zeros((H, W), np.uint8)),
        encoded(".bmp", np.zeros((H, W, 3), np.uint8)),
        encoded(".tif", np.zeros((H, W, 3), np.uint8)),
        encoded(".tiff", np.zeros((H, W), np.uint16)),
        pillow("JPEG", progressive=True),
        pillow("JPEG", exif=Image.Exif().tobytes()),  # an APP1 segment before the frame header
        pillow("TIFF", big_tiff=True),
        pillow("TIFF", compression="tiff_lzw"),
        pillow("BMP", mode="L"),
    ],
    ids=[
        "png",
        "png-grey16",
        "jpeg",
        "jpeg-grey",
        "bmp",
        "tiff",
        "tiff-grey16",
        "jpeg-progressive",
        "jpeg-exif",
        "bigtiff",
        "tiff-lzw",
        "bmp-grey",
    ],
)
def test_header_size_is_the_decoded_size(data: bytes) -> None:
    assert image_size(data) == (W, H)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and decoded.shape[:2] == (H, W)


def test_big_endian_tiff_and_top_down_bmp() -> None:
    # A big-endian TIFF with one IFD holding width (LONG) and length (SHORT).
    entries = struct.pack(">HHII", 256, 4, 1, 70000) + struct.pack(">HHIHH", 257, 3, 1, 50000, 0)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 2) + entries + b"\0\0\0\0"
    assert image_size(tiff) == (70000, 50000)
    bmp = bytearray(encoded(".bmp", np.zeros((H, W, 3), np.uint8)))
    bmp[22:26] = struct.pack("<i", -H)  # negative height: rows stored top-down
    assert image_size(bytes(bmp)) == (W, H)


def test_a_bomb_header_is_read_without_its_pixels() -> None:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
    assert image_size(bomb) == (50000, 50000)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GIF89a....", "unrecognised image header"),
        (b"", "unrecognised image header"),
        (b"\x89PNG\r\n\x1a\n\0\0", "truncated image header"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated image header"),
        (b"\xff\xd8\xff\xda\x00\x08", "JPEG without frame header"),
        (b"\xff\xd8\x00", "marker expected"),
        (b"II*\x00\x08\x00\x00\x00\x00\x00", "TIFF without image width and length"),
    ],
)
def test_what_is_not_a_readable_header_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        image_size(data)
