"""What the station loads before its first part: the encoders, and the golden banks of every SKU.

Loading only. The encoders come from the artifact set the flash (or ``edge export``) built; when it is
missing or made for another model the station starts in safe mode with the command that builds it
(:class:`edge.engines.encoders.ArtifactsMissingError`). The banks come from the flashed slot (``--root``)
or, for a config file (``--config``), are built at start from its golden folders with those encoders and
cached in the data dir (:func:`edge.golden.banks.build_banks`): enrollment with exported encoders, the same
step the flash runs, never an export.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from edge.engines.encoders import Encoders, configured_encoders
from edge.golden.banks import build_banks
from edge.inspection.bank import SkuBank
from edge.inspection.inspector import Inspector
from edge.runtime.boot import Boot
from edge.runtime.options import StartError

log = logging.getLogger(__name__)


class EncoderCache:
    """The loaded encoders, kept across config reloads while the model settings stay the same."""

    def __init__(self) -> None:
        self._encoders: Encoders | None = None
        self._key: tuple[Any, ...] | None = None

    def load(self, boot: Boot) -> Encoders:
        """Encoders as ``boot``'s config asks for them: its precision and backend preference.

        Raises:
            ArtifactsMissingError: The configured artifacts are missing or for another model.

        """
        model = boot.config.model
        artifact_dir = boot.resolved.paths.get("model.artifact_dir", Path(model.artifact_dir))
        key = (
            tuple(model.input_size),
            str(artifact_dir),
            model.precision,
            tuple(model.backends),
            model.backbone,
        )
        if self._encoders is not None and self._key == key:
            return self._encoders
        # The config's precision and backend preference; `state` says what was skipped and why.
        self._encoders = configured_encoders(
            model.input_size, artifact_dir, model.precision, model.backends, model.backbone
        )
        self._key = key
        log.info("encoders: %s on %s", self._encoders.model_id, self._encoders.backend)
        return self._encoders


def load_inspector(boot: Boot, encoders: Encoders) -> Inspector:
    """An inspector with every SKU's golden bank: the flashed ones, or built from the golden folders.

    Raises:
        StartError: A bank could not be built from the golden folders (the problems, per SKU).
        BankError: A flashed bank is missing or made for another model.

    """
    inspector = Inspector(encoders)
    banks_dir = boot.banks_dir
    if banks_dir is None:
        data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
        banks_dir = data_dir / "banks"
        shutil.rmtree(banks_dir, ignore_errors=True)
        artifact_dir = boot.resolved.paths.get("model.artifact_dir", Path(boot.config.model.artifact_dir))
        report = build_banks(
            boot.resolved, artifact_dir, banks_dir, cache_dir=data_dir / "bank-cache", encoders=encoders
        )
        if not report.ok:
            raise StartError("golden banks failed: " + "; ".join(report.problems()))
    for sku in boot.config.skus:
        inspector.add_bank(SkuBank.load(banks_dir / sku.id, encoders.model_id))
    return inspector
