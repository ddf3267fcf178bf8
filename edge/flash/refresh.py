"""After a software update: bring the active config's model artifacts and golden banks to the running model.

The model id hashes the weights, the model settings and the code of the encoders' graphs, so an update that
changes what the encoders compute changes the id, and the station refuses the old artifacts and banks (it
would start in safe mode saying so). ``edge flash refresh`` (the ``post-update`` hook ``05-refresh-model``)
re-exports the ONNX encoders (and the configured reduced precision, INT8 calibrated on the SKUs' golden
images) into the active config's artifact folder and re-flashes the active config byte for byte (signature
included), through the normal flash: banks rebuilt and recalibrated, self-test, A/B install, the running
station confirms. When artifacts and banks already match the running model it does nothing.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from edge.artifacts.manifest import ManifestError, load_manifest
from edge.artifacts.names import MANIFEST_FILE
from edge.config.signing import signature_path
from edge.flash.active import ActiveConfig, SafeMode, load_active_config
from edge.flash.flash import FlashOptions, FlashResult, flash
from edge.flash.journal import who
from edge.flash.revision import new_revision
from edge.flash.slots import CONFIG_NAME
from edge.model.spec import ModelSpec, spec_model_id

log = logging.getLogger(__name__)


def refresh(
    root: Path,
    *,
    by: str | None = None,
    hooks_dir: Path | None = None,
    hook_timeout_s: float = 60.0,
    confirm_timeout_s: float = 120.0,
) -> FlashResult:
    """Re-export and re-flash the active config when its artifacts or banks are for another model.

    Returns:
        ``unchanged`` when nothing was stale or nothing is installed; otherwise the re-flash's result
        (``aborted`` with the reason when the export fails its gates).

    """
    active = load_active_config(root)
    if isinstance(active, SafeMode):
        # Nothing installed can be refreshed (the health check reports a broken station on its own).
        reason = f"nothing to refresh: no usable active config ({active.reason})"
        return FlashResult(flash_id="", result="unchanged", reason=reason)
    model = active.config.model
    spec = ModelSpec(input_size=(int(model.input_size[0]), int(model.input_size[1])), backbone=model.backbone)
    current = spec_model_id(spec)
    artifact_dir = active.resolved.paths.get("model.artifact_dir", Path(model.artifact_dir))
    exported = _exported_model(artifact_dir)
    banks = str(active.manifest.get("model_id") or "")
    if exported == current and banks == current:
        return FlashResult(
            flash_id="",
            result="unchanged",
            reason=f"artifacts and golden banks are for the running model {current}",
        )
    log.info("model %s running; artifacts for %s, banks for %s: refreshing", current, exported, banks or "?")
    if exported != current:
        try:
            _reexport(spec, artifact_dir, model.precision, active)
        except Exception as exc:  # a failed gate or a full disk: the station keeps its safe mode reason
            return FlashResult(
                flash_id="", result="aborted", reason=f"re-export failed: {type(exc).__name__}: {exc}"
            )
    return flash(
        _revision_copy(active),
        FlashOptions(
            root=root,
            hooks_dir=hooks_dir,
            by=f"post-update:{who(by)}",
            hook_timeout_s=hook_timeout_s,
            confirm_timeout_s=confirm_timeout_s,
        ),
    )


def _exported_model(artifact_dir: Path) -> str | None:
    try:
        return load_manifest(artifact_dir).model_id
    except ManifestError:
        return None


def _reexport(spec: ModelSpec, artifact_dir: Path, precision: str, active: ActiveConfig) -> None:
    """Replace the artifact set with the running model's export, in the configured precision."""
    # The flash path builds what the run path only loads. Imported when a refresh re-exports (torch), not
    # whenever `edge flash` starts; tests/test_layers.py counts these imports like any other.
    from export.calibration import load_calibration
    from export.onnx_export import export_onnx
    from export.pipeline import export_fp16, export_int8

    try:
        old = load_manifest(artifact_dir)
    except ManifestError:
        old = None
    if old is not None:  # only what the old export listed: anything else in the folder is not ours
        for name in old.files:
            (artifact_dir / name).unlink(missing_ok=True)
        (artifact_dir / MANIFEST_FILE).unlink()
    export_onnx(spec, artifact_dir)
    if precision == "fp16":
        export_fp16(spec, artifact_dir)
    elif precision == "int8":
        # Calibrated on the golden images of every SKU of the config, as an engineer would export it.
        with tempfile.TemporaryDirectory(prefix="edge-refresh-calib-") as tmp:
            for sku, images in active.resolved.golden_images.items():
                for i, image in enumerate(images):
                    (Path(tmp) / f"{sku}-{i:05d}{image.suffix}").symlink_to(image.resolve())
            export_int8(spec, artifact_dir, load_calibration(Path(tmp), spec.input_size))


def _revision_copy(active: ActiveConfig) -> Path:
    """The active config, byte for byte (and its signature), next to where it was flashed from."""
    target = new_revision(active).config_file
    installed = active.slot_dir / CONFIG_NAME
    shutil.copyfile(installed, target)
    if signature_path(installed).is_file():
        shutil.copyfile(signature_path(installed), signature_path(target))
    return target
