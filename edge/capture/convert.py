"""Pixel-format conversion: a driver buffer in any supported GenICam (PFNC) format -> RGB8.

Every function returns a new C-contiguous array that shares no memory with its input, because the input is
usually a view of a GenTL buffer that the producer overwrites as soon as the buffer is queued again.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from edge.capture.errors import MalformedBufferError, UnsupportedPixelFormat
from edge.capture.frame import RgbImage

RawBuffer = npt.NDArray[np.generic]

# Explicit-pattern OpenCV codes (cv2 >= 4.5): the PFNC name gives the top-left 2x2 tile, and so does the code.
# The short OpenCV names (COLOR_BayerBG2RGB) refer to a different pixel and are a classic source of swapped
# red/blue channels.
_BAYER_CODES: dict[str, int] = {
    "BayerRG8": cv2.COLOR_BayerRGGB2RGB,
    "BayerGR8": cv2.COLOR_BayerGRBG2RGB,
    "BayerGB8": cv2.COLOR_BayerGBRG2RGB,
    "BayerBG8": cv2.COLOR_BayerBGGR2RGB,
}
_MONO_HIGH_BITS: dict[str, int] = {"Mono10": 10, "Mono12": 12, "Mono16": 16}


def _plane(
    data: RawBuffer, width: int, height: int, channels: int, pixel_format: str
) -> npt.NDArray[np.uint8]:
    """Reshape an 8-bit buffer to ``H x W x C`` after checking dtype and size."""
    if data.dtype != np.uint8:
        raise MalformedBufferError(f"{pixel_format} {width}x{height}: expected uint8 data, got {data.dtype}")
    expected = width * height * channels
    if data.size != expected:
        raise MalformedBufferError(
            f"{pixel_format} {width}x{height}: expected {expected} bytes, got {data.size}"
        )
    return np.asarray(data, dtype=np.uint8).reshape(height, width, channels)


def _mono8(data: RawBuffer, width: int, height: int) -> RgbImage:
    gray = _plane(data, width, height, 1, "Mono8")[:, :, 0]
    return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), dtype=np.uint8)


def _mono_high(pixel_format: str) -> Callable[[RawBuffer, int, int], RgbImage]:
    bits = _MONO_HIGH_BITS[pixel_format]

    def convert(data: RawBuffer, width: int, height: int) -> RgbImage:
        expected = width * height
        if data.dtype == np.uint8 and data.size == 2 * expected:
            # Unexpanded raw bytes: unpacked high-bit formats are little-endian 16-bit words (PFNC).
            data = np.ascontiguousarray(data).view("<u2")
        if data.dtype != np.uint16:
            raise MalformedBufferError(
                f"{pixel_format} {width}x{height}: expected uint16 data, got {data.dtype}"
            )
        if data.size != expected:
            raise MalformedBufferError(
                f"{pixel_format} {width}x{height}: expected {expected} pixels, got {data.size}"
            )
        # Clip first: a sensor can set bits above its depth, which a plain shift would wrap into dark pixels.
        gray = (np.minimum(data.reshape(height, width), (1 << bits) - 1) >> (bits - 8)).astype(np.uint8)
        return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), dtype=np.uint8)

    return convert


def _rgb8(data: RawBuffer, width: int, height: int) -> RgbImage:
    image: RgbImage = _plane(data, width, height, 3, "RGB8").copy()
    return image


def _bgr8(data: RawBuffer, width: int, height: int) -> RgbImage:
    return np.ascontiguousarray(_plane(data, width, height, 3, "BGR8")[:, :, ::-1])


def _rgba8(data: RawBuffer, width: int, height: int) -> RgbImage:
    return np.ascontiguousarray(_plane(data, width, height, 4, "RGBa8")[:, :, :3])


def _bgra8(data: RawBuffer, width: int, height: int) -> RgbImage:
    return np.ascontiguousarray(_plane(data, width, height, 4, "BGRa8")[:, :, 2::-1])


def _bayer(pixel_format: str) -> Callable[[RawBuffer, int, int], RgbImage]:
    code = _BAYER_CODES[pixel_format]

    def convert(data: RawBuffer, width: int, height: int) -> RgbImage:
        mosaic = np.ascontiguousarray(_plane(data, width, height, 1, pixel_format)[:, :, 0])
        return np.asarray(cv2.cvtColor(mosaic, code), dtype=np.uint8)

    return convert


_CONVERTERS: dict[str, Callable[[RawBuffer, int, int], RgbImage]] = {
    "Mono8": _mono8,
    **{name: _mono_high(name) for name in _MONO_HIGH_BITS},
    "RGB8": _rgb8,
    "BGR8": _bgr8,
    "RGBa8": _rgba8,
    "BGRa8": _bgra8,
    **{name: _bayer(name) for name in _BAYER_CODES},
}

#: Pixel formats :func:`to_rgb` accepts (PFNC names).
SUPPORTED_PIXEL_FORMATS: frozenset[str] = frozenset(_CONVERTERS)


def check_pixel_format(pixel_format: str) -> None:
    """Raise :class:`UnsupportedPixelFormat` unless ``pixel_format`` can be converted."""
    if pixel_format not in _CONVERTERS:
        raise UnsupportedPixelFormat(pixel_format)


def to_rgb(data: RawBuffer, width: int, height: int, pixel_format: str) -> RgbImage:
    """Convert a raw image buffer to an owned ``H x W x 3`` RGB ``uint8`` array.

    Args:
        data: Pixel data in any shape whose element count matches (GenTL buffers arrive flat); 8-bit
            formats as ``uint8``, Mono10/12/16 as ``uint16`` or as their raw little-endian bytes.
        width: Image width in pixels.
        height: Image height in pixels.
        pixel_format: PFNC name, one of :data:`SUPPORTED_PIXEL_FORMATS`.

    Returns:
        A new C-contiguous array that shares no memory with ``data``.

    Raises:
        UnsupportedPixelFormat: The format has no converter (the message names it).
        MalformedBufferError: Size or dtype do not match the format and dimensions.

    """
    check_pixel_format(pixel_format)
    if width <= 0 or height <= 0:
        raise MalformedBufferError(f"{pixel_format}: invalid dimensions {width}x{height}")
    out = _CONVERTERS[pixel_format](np.ravel(data), width, height)
    if np.may_share_memory(out, data):  # defensive: converters copy, but the guarantee matters downstream
        out = out.copy()
    return out
