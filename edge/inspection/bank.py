"""Golden-template bank of one SKU: encoded once at enrollment, stored versioned, retrieved by cosine.

The file is keyed by the model id (weights + model spec) and by the hashes of the golden images, so a bank
built with other weights, another input size, or other golden images is refused rather than silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.inspection.memory import PatchMemory
from edge.inspection.whole_part import WholePartModel

BANK_FORMAT = 3
#: Per-golden-image arrays (first axis = golden image).
_ARRAYS = ("features", "descriptors", "thumbs", "gray_reg", "gray_fine")
#: SKU-wide arrays: the patch memory and the whole-part model (empty when they do not take part).
#: Memory for float32 copies of recently compared template features, per SKU.
TEMPLATE_CACHE_BYTES = 64 * 1024 * 1024
_SKU_ARRAYS = ("memory_patches", "memory_source", "part_mean", "part_precision")


class BankError(RuntimeError):
    """A bank file that cannot be used (missing, corrupt, or built for another model)."""


def shown_label(image: int) -> int:
    """Memory source label of golden image ``image`` as the line shows it (as captured: ``image``)."""
    return -(image + 1)


@dataclass
class Calibration:
    """Per-SKU normalisation and threshold, learned from the golden images only (no test labels).

    Attributes:
        feature_scale: typical high value of the feature-level anomaly on golden parts.
        pixel_scale: the same for the pixel-level anomaly.
        threshold: image-score threshold (normalised units); above it the part is NG.
        golden_scores: the normalised image scores of the calibration samples.
        method: how each sample was obtained (``peer`` = leave-one-out against the other golden parts,
            registered; ``peer-features`` = the same when the golden parts do not register onto each other,
            which calibrates the position-free feature comparison only; ``self`` = the golden part itself
            under line perturbation: a bank of views, or a single golden part).
        outliers: golden images whose score is far above the others'; they do not set the threshold and
            the flash self-test refuses a bank that has any.
        pixel_compare: whether the pixel-level map takes part in the verdict (see ``SkuSettings``).
        memory_scale: the same as ``feature_scale`` for the whole-bank patch memory.
        part_scale: the same for the whole-part (Mahalanobis) score.
        maps: the maps that take part (``template``, ``memory``, ``pixel``), chosen by self-configuration.
        fusion: how the maps fuse (``max``, ``mean``, ``geo``), chosen by self-configuration.
        aggregation: image score from the fused map: ``max``, ``tail`` (mean of its top 1 %) or ``either``
            (the larger of the two, each divided by its golden scale in ``aggregation_scales``).
        aggregation_scales: golden scales of the map's maximum and tail mean (``either`` only).
        whole_part: how the whole-part score joins the map score: ``off``, ``max`` or ``sum``.
        map_threshold: level of the fused map a box must reach (the highest golden map maximum with the
            margin), independent of how the image score aggregates.
        capability: the self-configuration's report (choice, detection per synthetic defect kind,
            golden false-NG rate, the runners-up) for the flash and the line engineer.

    """

    feature_scale: float
    pixel_scale: float
    threshold: float
    golden_scores: list[float] = field(default_factory=list)
    method: list[str] = field(default_factory=list)
    outliers: list[str] = field(default_factory=list)
    pixel_compare: bool = True
    memory_scale: float = 1.0
    part_scale: float = 1.0
    maps: list[str] = field(default_factory=lambda: ["template"])
    fusion: str = "max"
    aggregation: str = "max"
    aggregation_scales: list[float] = field(default_factory=lambda: [1.0, 1.0])
    whole_part: str = "off"
    map_threshold: float = 0.0
    capability: dict[str, Any] = field(default_factory=dict)


@dataclass
class SkuBank:
    """Encoded golden images of one SKU."""

    sku: str
    model_id: str
    template_ids: list[str]
    image_hashes: list[str]
    image_size: tuple[int, int]  # (height, width) of the golden images
    features: npt.NDArray[np.float16]  # [N, C, h, w]
    descriptors: npt.NDArray[np.float32]  # [N, D]
    thumbs: npt.NDArray[np.float32]  # [N, 256]
    gray_reg: npt.NDArray[np.uint8]  # [N, hr, wr]
    gray_fine: npt.NDArray[np.uint8]  # [N, hf, wf]
    input_size: tuple[int, int] = (320, 320)  # (height, width) of the model input for this SKU
    aspect_range: tuple[float, float] = (0.0, float("inf"))  # accepted frame width/height ratios
    memory_patches: npt.NDArray[np.float16] = field(default_factory=lambda: np.zeros((0, 0), np.float16))
    memory_source: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    part_mean: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    part_precision: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    calibration: Calibration | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    #: golden images whose aspect ratio is far from the SKU's (resized anyway; the flash warns).
    squashed: list[str] = field(default_factory=list)
    #: packed patch memory per (feature size, excluded images): built once, reused every frame.
    _packed: dict[Any, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: float32 copies of recently compared templates' features (see :meth:`template_features`).
    _features32: OrderedDict[int, npt.NDArray[np.float32]] = field(
        default_factory=OrderedDict, repr=False, compare=False
    )
    #: pooled descriptors the whole-part model was fitted on and the golden image (memory source label)
    #: of each: the flash's leave-one-out needs them; not stored (a loaded bank is not re-calibrated).
    part_pooled: tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]] | None = field(
        default=None, repr=False, compare=False
    )
    _features32_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def template_features(self, indices: Sequence[int]) -> npt.NDArray[np.float32]:
        """Features of golden images ``indices`` as one contiguous float32 ``[k, C, h, w]`` batch.

        The bank stores features in float16 (half the memory of a large bank); converting three templates
        back for every frame cost 1.6 ms of a 50 ms frame (2 cores, Lite2, 320x320), and a line keeps
        retrieving the same few templates, so recent conversions are kept up to
        :data:`TEMPLATE_CACHE_BYTES`.
        """
        out = []
        with self._features32_lock:  # station workers share the bank
            for i in indices:
                hit = self._features32.get(i)
                if hit is None:
                    hit = self.features[i].astype(np.float32)
                    per = max(1, hit.nbytes)
                    while self._features32 and (len(self._features32) + 1) * per > TEMPLATE_CACHE_BYTES:
                        self._features32.popitem(last=False)
                    self._features32[i] = hit
                else:
                    self._features32.move_to_end(i)
                out.append(hit)
        return np.stack(out) if out else np.zeros((0, *self.features.shape[1:]), np.float32)

    @property
    def memory(self) -> PatchMemory | None:
        """The whole-bank patch memory (None when the bank has none)."""
        if self.memory_patches.size == 0:
            return None
        return PatchMemory(self.memory_patches, self.memory_source)

    def packed_memory(
        self,
        feature_size: tuple[int, int],
        exclude: frozenset[int] = frozenset(),
        exclude_shown: frozenset[int] = frozenset(),
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
        """The memory as comparison-encoder templates and validity (cached for the frame path).

        Args:
            feature_size: (h, w) of the frame's feature map.
            exclude: golden images left out entirely (leave-one-out): their patches as captured and as
                the line shows them.
            exclude_shown: golden images whose line-shown patches only are left out (a golden part
                compared with itself under line nuisance must not find that nuisance already stored).

        """
        memory = self.memory
        if memory is None:
            return None
        labels = exclude | {shown_label(i) for i in exclude | exclude_shown}
        key = (feature_size, labels)
        if key not in self._packed:
            if len(self._packed) > 64:  # leave-one-out keys during calibration
                self._packed.clear()
            self._packed[key] = memory.packed(feature_size, labels)
        return self._packed[key]

    @property
    def whole_part(self) -> WholePartModel | None:
        """The golden distribution of pooled features (None when too few golden parts)."""
        if self.part_mean.size == 0:
            return None
        return WholePartModel(mean=self.part_mean, precision=self.part_precision, shrinkage=float("nan"))

    def __len__(self) -> int:
        return len(self.template_ids)

    @property
    def bank_id(self) -> str:
        """Stable id of the bank content: model id + golden image hashes."""
        blob = json.dumps([self.model_id, self.sku, sorted(self.image_hashes)]).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def retrieve(
        self,
        descriptor: npt.NDArray[np.float32],
        thumb: npt.NDArray[np.float32],
        k: int,
        exclude: frozenset[int] = frozenset(),
    ) -> list[tuple[int, float]]:
        """Top-``k`` templates by the mean of descriptor cosine and thumbnail correlation.

        The feature descriptor carries appearance, the thumbnail the part's layout: both are needed to
        tell apart views of one product (BASELINES: 98 % and 99.8 % alone on DeepPCB).
        """
        score = 0.5 * (self.descriptors @ descriptor) + 0.5 * (self.thumbs @ thumb)
        if exclude:
            score = score.copy()
            score[list(exclude)] = -np.inf
        k = max(1, min(k, len(self) - len(exclude)))
        order = np.argsort(-score, kind="stable")[:k]
        return [(int(i), float(score[i])) for i in order if np.isfinite(score[i])]

    def save(self, directory: Path) -> Path:
        """Write the bank atomically into ``directory`` (``bank.npz`` + ``bank.json``)."""
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": BANK_FORMAT,
            "sku": self.sku,
            "model_id": self.model_id,
            "bank_id": self.bank_id,
            "template_ids": self.template_ids,
            "image_hashes": self.image_hashes,
            "image_size": list(self.image_size),
            "input_size": list(self.input_size),
            "aspect_range": list(self.aspect_range),
            "squashed": self.squashed,
            "calibration": asdict(self.calibration) if self.calibration else None,
            "settings": self.settings,
        }
        tmp_npz = directory / ".bank.npz.tmp"
        with tmp_npz.open("wb") as fh:
            np.savez(fh, **{name: getattr(self, name) for name in (*_ARRAYS, *_SKU_ARRAYS)})
            fh.flush()
            os.fsync(fh.fileno())
        tmp_json = directory / ".bank.json.tmp"
        with tmp_json.open("w") as fh:
            json.dump(meta, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_npz, directory / "bank.npz")
        os.replace(tmp_json, directory / "bank.json")
        return directory

    @classmethod
    def load(cls, directory: Path, model_id: str | None = None) -> SkuBank:
        """Read a bank; refuses another format, another model, or arrays that do not match the metadata."""
        try:
            meta = json.loads((directory / "bank.json").read_text())
        except (OSError, ValueError) as exc:
            raise BankError(f"{directory}: cannot read golden bank: {exc}") from exc
        if meta.get("format") != BANK_FORMAT:  # before any array of another layout is read
            raise BankError(
                f"{directory}: bank format {meta.get('format')}, expected {BANK_FORMAT}; "
                "re-flash the config to rebuild it"
            )
        try:
            with np.load(directory / "bank.npz") as data:
                arrays = {name: data[name] for name in _ARRAYS}
                sku_arrays = {name: data[name] for name in _SKU_ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            raise BankError(f"{directory}: cannot read golden bank: {exc}") from exc
        if model_id is not None and meta["model_id"] != model_id:
            raise BankError(
                f"{directory}: bank was built for model {meta['model_id']}, station runs {model_id}; "
                "re-flash the config to rebuild it"
            )
        n = len(meta["template_ids"])
        for name, array in arrays.items():
            if array.shape[0] != n:
                raise BankError(f"{directory}: {name} has {array.shape[0]} entries, metadata lists {n}")
        calib = meta.get("calibration")
        bank = cls(
            sku=meta["sku"],
            model_id=meta["model_id"],
            template_ids=list(meta["template_ids"]),
            image_hashes=list(meta["image_hashes"]),
            image_size=(int(meta["image_size"][0]), int(meta["image_size"][1])),
            input_size=(int(meta["input_size"][0]), int(meta["input_size"][1])),
            aspect_range=(float(meta["aspect_range"][0]), float(meta["aspect_range"][1])),
            calibration=Calibration(**calib) if calib else None,
            settings=dict(meta.get("settings", {})),
            squashed=list(meta.get("squashed", [])),
            **arrays,
            **sku_arrays,
        )
        if bank.bank_id != meta.get("bank_id"):
            raise BankError(f"{directory}: bank id mismatch (file edited or corrupt)")
        return bank


def image_sha256(image: npt.NDArray[Any]) -> str:
    """Content hash of a decoded image (shape + pixels)."""
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()
