"""One frame against its SKU's golden bank: retrieve -> register -> compare (pixels, features, memory, part).

The steps live in their own modules (retrieval: :meth:`edge.inspection.bank.SkuBank.retrieve`, registration:
:mod:`edge.inspection.registration`, pixel comparison: :mod:`edge.inspection.pixel`, patch memory:
:mod:`edge.inspection.memory`, whole-part score: :mod:`edge.inspection.whole_part`); this one runs them in
order on one frame and returns the un-normalised maps the score is made from (:mod:`edge.inspection.scoring`).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.engines.encoders import Encoders
from edge.inspection.bank import SkuBank
from edge.inspection.pixel import pixel_map
from edge.inspection.registration import register
from edge.inspection.settings import ALL_MAPS, InspectionError, InspectorSettings
from edge.inspection.types import Registration
from edge.inspection.whole_part import pooled
from edge.model.preprocess import PreparedImage

FloatMap = npt.NDArray[np.float32]


@dataclass
class RawMaps:
    """Un-normalised comparison of one frame against its retrieved templates."""

    feature: FloatMap  # template comparison, at fine resolution
    pixel: FloatMap  # at fine resolution
    memory: FloatMap | None  # whole-bank patch memory, at fine resolution (None: not computed)
    part: float | None  # whole-part Mahalanobis distance (None: no model or not computed)
    valid: npt.NDArray[np.bool_]
    template_idx: list[int]
    retrieval_scores: list[float]
    registrations: list[Registration]
    latency_ms: dict[str, float]


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL  # one process-wide pool, created on first use
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_cores(), thread_name_prefix="register")
        return _POOL


def register_all(
    frame: npt.NDArray[np.uint8], templates: list[npt.NDArray[np.uint8]], cfg: InspectorSettings
) -> list[Registration]:
    """Register each template to the frame, the templates side by side on every core.

    OpenCV releases the GIL and ECC on a 320x320 image keeps barely one core busy, so the k registrations
    of a frame run concurrently (`make bench` register stage, 2 cores, k=3: p50 6.2 ms in turn on 12-07,
    4.8 ms side by side on 12-08; compare with care, this VM's speed varies over the day). The
    encoders do not run meanwhile (the comparison needs the registrations), so nothing is starved.
    """
    if len(templates) < 2 or _cores() < 2:
        return [register(frame, t, cfg.registration) for t in templates]
    return list(_pool().map(lambda t: register(frame, t, cfg.registration), templates))


def analyze(
    encoders: Encoders,
    cfg: InspectorSettings,
    prepared: PreparedImage,
    features: FloatMap,
    descriptor: FloatMap,
    bank: SkuBank,
    top_k: int,
    exclude: frozenset[int] = frozenset(),
    maps: frozenset[str] = ALL_MAPS,
    exclude_shown: frozenset[int] = frozenset(),
) -> RawMaps:
    """Compare one encoded frame with its golden bank: retrieve, register, compare; un-normalised maps.

    ``maps`` names what to compute (``template``, ``pixel``, ``memory``, ``part``); the rest is left out
    (zero maps, ``None``) so that a frame pays only for the comparisons its SKU chose. ``exclude``
    leaves golden images out (leave-one-out); ``exclude_shown`` leaves out only the memory's copies of
    golden images as the line shows them (see :meth:`SkuBank.packed_memory`).
    """
    lat: dict[str, float] = {}
    t0 = time.perf_counter()
    hits = bank.retrieve(descriptor, prepared.thumb, top_k, exclude)
    if not hits:
        raise InspectionError(f"SKU '{bank.sku}': no golden template available to compare with")
    t1 = time.perf_counter()
    lat["retrieve"] = (t1 - t0) * 1e3

    fine_h, fine_w = prepared.gray_fine.shape
    fh, fw = features.shape[-2:]
    # Registration serves the template comparison (a template that registers much worse than the best
    # shows another view) and the pixel comparison; the patch memory and whole-part score need none.
    regs: list[Registration] = []
    if {"template", "pixel"} & maps:
        regs = register_all(prepared.gray_reg, [bank.gray_reg[i] for i, _ in hits], cfg)
        best_q = max(r.quality for r in regs)
        limit = cfg.view_mismatch_ratio * (1.0 - best_q) + 0.02
        keep = [j for j, r in enumerate(regs) if 1.0 - r.quality <= limit]
        hits = [hits[j] for j in keep]
        regs = [regs[j] for j in keep]
    t2 = time.perf_counter()
    lat["register"] = (t2 - t1) * 1e3
    pixel, valid_fine = pixel_map(cfg, prepared, bank, hits, regs, "pixel" in maps)
    t3 = time.perf_counter()
    lat["pixel_compare"] = (t3 - t2) * 1e3

    # Feature level: the comparison encoder attends over every location of the retrieved templates as
    # enrolled (no warping: the search is position-free, so registration residue cannot show up here).
    query = np.ascontiguousarray(features[None], dtype=np.float32)
    feature = np.zeros((fine_h, fine_w), np.float32)
    if "template" in maps:
        out = encoders.comparison.infer(
            {
                "query": query,
                "templates": bank.template_features([i for i, _ in hits]),
                "template_valid": np.ones((len(hits), 1, fh, fw), np.float32),
            }
        )
        anomaly = out["anomaly"][0, 0].astype(np.float32)
        feature = cv2.resize(anomaly, (fine_w, fine_h), interpolation=cv2.INTER_LINEAR)
    t4 = time.perf_counter()
    lat["feature_compare"] = (t4 - t3) * 1e3
    # The same graph searches the whole-bank patch memory (packed as templates; leave-one-out masks the
    # excluded golden images' own patches).
    memory: FloatMap | None = None
    packed = bank.packed_memory((fh, fw), exclude, exclude_shown) if "memory" in maps else None
    if packed is not None:
        out = encoders.comparison.infer({"query": query, "templates": packed[0], "template_valid": packed[1]})
        memory = cv2.resize(
            out["anomaly"][0, 0].astype(np.float32), (fine_w, fine_h), interpolation=cv2.INTER_LINEAR
        )
    t5 = time.perf_counter()
    lat["memory_compare"] = (t5 - t4) * 1e3
    part: float | None = None
    whole = bank.whole_part
    if "part" in maps and whole is not None:
        part = float(whole.distance(pooled(features[None]))[0])
    lat["whole_part"] = (time.perf_counter() - t5) * 1e3
    return RawMaps(
        feature=feature,
        pixel=pixel,
        memory=memory,
        part=part,
        valid=valid_fine,
        template_idx=[i for i, _ in hits],
        retrieval_scores=[s for _, s in hits],
        registrations=regs,
        latency_ms=lat,
    )
