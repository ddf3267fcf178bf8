"""The unit the capture layer hands to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

RgbImage = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Frame:
    """One acquired image, already converted to RGB8.

    Attributes:
        image: ``H x W x 3`` RGB ``uint8``, C-contiguous, owned by the frame (never a view of a driver
            buffer, which the producer reuses as soon as it is queued again).
        seq: Sequence number assigned by the source, strictly increasing over the source's life (also across
            reconnects; the device's own frame id is in ``meta["device_frame_id"]`` when available).
        timestamp: ``time.time()`` when the frame was acquired by this process. Device clocks are not
            synchronised with the host, so the device timestamp is only metadata
            (``meta["device_timestamp"]``).
        source: Name of the source that produced the frame.
        pixel_format: Pixel format as delivered by the device or file (before conversion).
        sku: SKU of the part when the source knows it (replay sub-folder or sidecar), else ``None``.
        meta: Free-form extra information (device frame id, file path, sidecar contents, ...).

    """

    image: RgbImage
    seq: int
    timestamp: float
    source: str
    pixel_format: str
    sku: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        img = self.image
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"Frame.image must be HxWx3 uint8, got {img.shape} {img.dtype}")
        if not img.flags.c_contiguous:
            raise ValueError("Frame.image must be C-contiguous")

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])
