"""End to end on a tiny synthetic SKU: defects found and boxed, clean parts pass, bad input refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.engines.encoders import Encoders
from edge.inspection.augment import LinePerturbation
from edge.inspection.inspector import Inspector
from edge.inspection.settings import InspectionError, InspectorSettings, SkuSettings
from edge.inspection.types import Verdict
from edge.model.io import EngineInputError
from edge.model.preprocess import ImageError
from edge.synthetic.parts import DEFECTS, make_part


def _box_hits_mask(box: tuple[int, int, int, int], mask: np.ndarray) -> bool:
    x, y, w, h = box
    return bool(mask[y : y + h, x : x + w].any())


@pytest.mark.parametrize("defect", DEFECTS)
def test_defect_is_found_and_boxed(enrolled_inspector: Inspector, defect: str) -> None:
    part = make_part(np.random.default_rng(42), defect=defect)
    result = enrolled_inspector.inspect(part.image, "plate")
    assert result.verdict is Verdict.NG, f"{defect}: score {result.score:.2f} thr {result.threshold:.2f}"
    assert result.boxes
    assert _box_hits_mask(
        (result.boxes[0].x, result.boxes[0].y, result.boxes[0].w, result.boxes[0].h), part.mask
    )


def test_clean_parts_pass(enrolled_inspector: Inspector) -> None:
    rng = np.random.default_rng(7)
    results = [enrolled_inspector.inspect(make_part(rng).image, "plate") for _ in range(5)]
    assert [r.verdict for r in results] == [Verdict.OK] * 5
    assert all(r.score < r.threshold for r in results)


def test_result_carries_what_the_station_publishes(enrolled_inspector: Inspector) -> None:
    result = enrolled_inspector.inspect(make_part(np.random.default_rng(1)).image, "plate")
    assert result.template_id.startswith("g")
    assert {"encode", "register", "feature_compare", "pixel_compare", "total"} <= set(result.latency_ms)
    assert result.anomaly_map.dtype == np.float32


def test_grayscale_and_rgba_frames_are_accepted(enrolled_inspector: Inspector) -> None:
    image = make_part(np.random.default_rng(2)).image
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    rgba = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    assert enrolled_inspector.inspect(gray, "plate").verdict in (Verdict.OK, Verdict.NG)
    assert enrolled_inspector.inspect(rgba, "plate").verdict is Verdict.OK


def test_frame_of_another_size_is_resized_when_aspect_matches(enrolled_inspector: Inspector) -> None:
    image = cv2.resize(make_part(np.random.default_rng(9)).image, (512, 512))
    assert enrolled_inspector.inspect(image, "plate").verdict is Verdict.OK


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((256, 256, 3), np.float32), "uint8"),
        (np.zeros((256, 256, 2), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.uint8), "too small"),
        (np.zeros((256, 512, 3), np.uint8), "aspect ratio"),
        ("not an image", "numpy array"),
    ],
)
def test_bad_frames_are_rejected_with_a_clear_error(
    enrolled_inspector: Inspector, frame: object, message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        enrolled_inspector.inspect(frame, "plate")  # type: ignore[arg-type]


def test_unknown_sku_names_the_known_ones(enrolled_inspector: Inspector) -> None:
    with pytest.raises(InspectionError, match=r"unknown SKU 'nope' \(enrolled: plate\)"):
        enrolled_inspector.inspect(make_part(np.random.default_rng(0)).image, "nope")


def test_engine_rejects_wrong_feeds(onnx_encoders_session: Encoders) -> None:
    with pytest.raises(EngineInputError, match="dim 3 is 4"):
        onnx_encoders_session.vision.infer({"image": np.zeros((1, 320, 320, 4), np.uint8)})


def test_onnx_and_torch_agree_on_verdicts(
    onnx_encoders_session: Encoders,
    torch_encoders_session: Encoders,
    synthetic_golden: list[tuple[str, np.ndarray]],
) -> None:
    rng = np.random.default_rng(11)
    parts = [make_part(rng, defect=d) for d in (None, "spot", None, "scratch")]
    outcomes = []
    for encoders in (onnx_encoders_session, torch_encoders_session):
        inspector = Inspector(encoders)
        inspector.enroll("plate", synthetic_golden[:6])
        outcomes.append([inspector.inspect(p.image, "plate") for p in parts])
    for onnx_result, torch_result in zip(*outcomes, strict=True):
        assert onnx_result.verdict is torch_result.verdict
        assert onnx_result.score == pytest.approx(torch_result.score, rel=1e-3, abs=1e-3)


def test_golden_parts_without_registered_peers_calibrate_the_feature_comparison(
    onnx_encoders_session: Encoders, synthetic_golden: list[tuple[str, np.ndarray]]
) -> None:
    """As for textures or freely placed parts: no golden part counts as a registered peer of another."""
    inspector = Inspector(onnx_encoders_session, InspectorSettings(peer_min_quality=1.1))
    bank = inspector.enroll("plate", synthetic_golden)
    assert bank.calibration is not None
    assert set(bank.calibration.method) == {"peer-features"} and not bank.calibration.pixel_compare
    rng = np.random.default_rng(7)
    assert [inspector.inspect(make_part(rng).image, "plate").verdict for _ in range(5)] == [Verdict.OK] * 5
    spot = make_part(np.random.default_rng(42), defect="missing_hole")
    assert inspector.inspect(spot.image, "plate").verdict is Verdict.NG

    # With a single golden part there is nothing to compare with: the part against itself under line
    # nuisance, which the flash reports as a warning.
    single = inspector.enroll("single", synthetic_golden[:1])
    assert single.calibration is not None and single.calibration.method == ["self"]


def test_line_nuisance_is_calibrated_for_and_can_be_switched_off(
    onnx_encoders_session: Encoders, synthetic_golden: list[tuple[str, np.ndarray]]
) -> None:
    """``line_nuisance: typical`` shows every golden part also as the line would; ``off`` does not."""
    inspector = Inspector(onnx_encoders_session)
    typical = inspector.enroll("typical", synthetic_golden)
    clean = inspector.enroll("clean", synthetic_golden, SkuSettings(line_nuisance="off"))
    assert typical.calibration is not None and clean.calibration is not None
    shown = len(clean.calibration.golden_scores)
    assert shown == len(synthetic_golden)
    assert len(typical.calibration.golden_scores) == 2 * shown  # each also as the line shows it
    # Good parts as a line shows them pass; a defect shown the same way is still caught.
    rng = np.random.default_rng(11)
    line = LinePerturbation()
    goods = [inspector.inspect(line.apply(make_part(rng).image, rng)[0], "typical") for _ in range(6)]
    assert [r.verdict for r in goods] == [Verdict.OK] * 6
    bad = line.apply(make_part(np.random.default_rng(42), defect="missing_hole").image, rng)[0]
    assert inspector.inspect(bad, "typical").verdict is Verdict.NG
    with pytest.raises(InspectionError, match="line_nuisance 'foggy'"):
        inspector.enroll("foggy", synthetic_golden, SkuSettings(line_nuisance="foggy"))


def test_enrollment_reports_each_step_to_its_end(
    onnx_encoders_session: Encoders, synthetic_golden: list[tuple[str, np.ndarray]]
) -> None:
    calls: list[tuple[str, int, int]] = []
    Inspector(onnx_encoders_session).enroll(
        "plate", synthetic_golden, progress=lambda step, done, total: calls.append((step, done, total))
    )
    steps = list(dict.fromkeys(step for step, _, _ in calls))
    assert steps == [
        "encoding golden images",
        "encoding line-shown copies",
        "patch memory (coreset)",
        "golden parts against their peers",
        "golden parts as the line shows them",
        "synthetic defects",
    ]
    for step in steps:
        seen = [(done, total) for s, done, total in calls if s == step]
        assert len({total for _, total in seen}) == 1, f"{step}: the total changed"
        dones = [done for done, _ in seen]
        assert dones == sorted(dones) and dones[-1] == seen[0][1] > 0, f"{step}: {seen}"
    assert dict((s, t) for s, _, t in calls)["encoding golden images"] == len(synthetic_golden)
    assert (
        dict((s, t) for s, _, t in calls)["synthetic defects"] == 5 * InspectorSettings().synthetic_per_kind
    )
