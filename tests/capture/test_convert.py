from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from edge.capture import SUPPORTED_PIXEL_FORMATS, MalformedBufferError, UnsupportedPixelFormat, to_rgb

H, W = 6, 8
RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def mosaic(colour: tuple[int, int, int], tile: str, height: int = 8, width: int = 8) -> npt.NDArray[np.uint8]:
    """A Bayer mosaic of a uniform colour; ``tile`` is the top-left 2x2 pattern, e.g. ``RGGB``."""
    index = {"R": 0, "G": 1, "B": 2}
    out = np.zeros((height, width), np.uint8)
    for dy in range(2):
        for dx in range(2):
            out[dy::2, dx::2] = colour[index[tile[2 * dy + dx]]]
    return out


def test_every_listed_format_is_exercised_here() -> None:
    tested = {"Mono8", "Mono10", "Mono12", "Mono16", "RGB8", "BGR8", "RGBa8", "BGRa8"} | {
        f"Bayer{t}8" for t in ("RG", "GR", "GB", "BG")
    }
    assert tested == SUPPORTED_PIXEL_FORMATS


def test_mono8_replicates_grey_into_three_channels() -> None:
    grey = RNG.integers(0, 256, size=H * W, dtype=np.uint8)  # flat, as GenTL delivers it
    out = to_rgb(grey, W, H, "Mono8")
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey.reshape(H, W))


@pytest.mark.parametrize(("fmt", "bits"), [("Mono10", 10), ("Mono12", 12), ("Mono16", 16)])
def test_high_bit_mono_scales_full_range_to_8_bit(fmt: str, bits: int) -> None:
    top = (1 << bits) - 1
    values = np.array([0, top, 1 << (bits - 1), top], dtype=np.uint16)
    out = to_rgb(values, 2, 2, fmt)
    assert out[:, :, 0].ravel().tolist() == [0, 255, 128, 255]


def test_high_bit_mono_clips_garbage_above_depth_instead_of_wrapping() -> None:
    out = to_rgb(np.array([0xFFFF], dtype=np.uint16), 1, 1, "Mono10")
    assert out[0, 0, 0] == 255


def test_high_bit_mono_accepts_raw_little_endian_bytes() -> None:
    words = np.array([0, 4095, 2048, 16], dtype=np.uint16)
    as_bytes = words.astype("<u2").view(np.uint8)
    np.testing.assert_array_equal(to_rgb(as_bytes, 2, 2, "Mono12"), to_rgb(words, 2, 2, "Mono12"))


def test_rgb_family_orders_channels() -> None:
    bgr = RGB[:, :, ::-1]
    alpha = np.full((H, W, 1), 17, np.uint8)
    np.testing.assert_array_equal(to_rgb(RGB.ravel(), W, H, "RGB8"), RGB)
    np.testing.assert_array_equal(to_rgb(np.ascontiguousarray(bgr).ravel(), W, H, "BGR8"), RGB)
    np.testing.assert_array_equal(to_rgb(np.concatenate([RGB, alpha], 2).ravel(), W, H, "RGBa8"), RGB)
    np.testing.assert_array_equal(to_rgb(np.concatenate([bgr, alpha], 2).ravel(), W, H, "BGRa8"), RGB)


@pytest.mark.parametrize("tile", ["RG", "GR", "GB", "BG"])
def test_bayer_demosaic_recovers_a_known_colour(tile: str) -> None:
    colour = (200, 120, 40)
    pattern = {"RG": "RGGB", "GR": "GRBG", "GB": "GBRG", "BG": "BGGR"}[tile]
    out = to_rgb(mosaic(colour, pattern).ravel(), 8, 8, f"Bayer{tile}8")
    # Borders are interpolated with reflected neighbours; the interior must be exact.
    interior = out[2:-2, 2:-2].reshape(-1, 3)
    assert (interior == colour).all(), f"Bayer{tile}8 gave {interior[0].tolist()}, expected {list(colour)}"


@pytest.mark.parametrize("fmt", sorted(SUPPORTED_PIXEL_FORMATS))
def test_output_is_an_owned_contiguous_copy(fmt: str) -> None:
    channels = {"RGB8": 3, "BGR8": 3, "RGBa8": 4, "BGRa8": 4}.get(fmt, 1)
    dtype = np.uint16 if fmt in {"Mono10", "Mono12", "Mono16"} else np.uint8
    data = np.full(H * W * channels, np.iinfo(dtype).max, dtype=dtype)
    out = to_rgb(data, W, H, fmt)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert not np.shares_memory(out, data)
    data[:] = 0  # the producer reuses its buffer: the frame must not change
    assert out.any()


def test_unknown_format_is_named() -> None:
    with pytest.raises(UnsupportedPixelFormat, match="'YCbCr422_8'") as info:
        to_rgb(np.zeros(16, np.uint8), 4, 4, "YCbCr422_8")
    assert info.value.pixel_format == "YCbCr422_8"


@pytest.mark.parametrize(
    ("data", "fmt", "match"),
    [
        (np.zeros(H * W - 1, np.uint8), "Mono8", "expected 48 bytes, got 47"),
        (np.zeros(H * W * 3 + 3, np.uint8), "RGB8", "expected 144 bytes, got 147"),
        (np.zeros(H * W * 3, np.uint8), "RGBa8", "expected 192 bytes, got 144"),
        (np.zeros(H * W, np.uint16), "Mono8", "expected uint8 data, got uint16"),
        (np.zeros(H * W + 1, np.uint16), "Mono12", "expected 48 pixels, got 49"),
        (np.zeros(H * W, np.float32), "Mono16", "expected uint16 data, got float32"),
        (np.zeros(H * W - 2, np.uint8), "BayerRG8", "expected 48 bytes, got 46"),
    ],
)
def test_malformed_buffers_raise_with_format_and_size(
    data: npt.NDArray[np.generic], fmt: str, match: str
) -> None:
    with pytest.raises(MalformedBufferError, match=match):
        to_rgb(data, W, H, fmt)


def test_invalid_dimensions() -> None:
    with pytest.raises(MalformedBufferError, match="invalid dimensions 0x4"):
        to_rgb(np.zeros(0, np.uint8), 0, 4, "Mono8")
