"""What the runtime calls at boot: the active config of a flashed station, or safe mode with the reason.

Never raises. It lives with the flash (it reads the A/B slots the flash installs), above the pure config.

A station that boots without a usable config must not crash-loop (systemd would restart it forever and the
PLC would see nothing): it publishes ``state = safe_mode`` with :attr:`SafeMode.reason`, inspects nothing
(every triggered part gets NOT_INSPECTED), keeps serving status and waits for a flash or a rollback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config.errors import ConfigError
from edge.config.loader import load_config
from edge.config.render import config_hash
from edge.config.resolve import ResolvedConfig, default_allowed_roots, resolve_config
from edge.config.root import StationConfig
from edge.flash.slots import SlotError, StationRoot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveConfig:
    """The config the station runs, from a verified slot.

    Attributes:
        config: The validated config.
        resolved: Paths (absolute) and secrets resolved on this machine; golden folders are not checked
            (the banks were built at flash time).
        slot: Slot name (``a``/``b``).
        slot_dir: The slot folder.
        banks_dir: Golden banks built at flash time, one folder per SKU id.
        config_hash: Hash to publish on ``state``.
        manifest: The slot manifest (who flashed, when, model id...).

    """

    config: StationConfig
    resolved: ResolvedConfig
    slot: str
    slot_dir: Path
    banks_dir: Path
    config_hash: str
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SafeMode:
    """No usable config: publish ``state = safe_mode`` with ``reason``; inspect nothing."""

    reason: str
    rollback_available: bool = False


def load_active_config(root: Path) -> ActiveConfig | SafeMode:
    """Load the active config of the station at ``root``; any problem becomes :class:`SafeMode`.

    Checks, in order: ``current`` names a slot; its manifest exists and every file matches its hash; the
    config validates; its hash matches the manifest; its paths and secrets resolve on this machine.
    """
    store = StationRoot(root)
    try:
        other = "b" if store.current_name() == "a" else "a"
        try:
            store.verify(other)
            rollback = store.current_name() is not None
        except SlotError:
            rollback = False
        try:
            info = store.current()
        except SlotError as exc:
            hint = " (the other slot is valid: `edge flash rollback`)" if rollback else ""
            return SafeMode(f"{exc}{hint}", rollback)
        config = load_config(info.config_path)
        digest = config_hash(config)
        if digest != info.config_hash:
            return SafeMode(f"slot {info.name}: config hash {digest} differs from the manifest", rollback)
        base = Path(str(info.manifest.get("base_dir") or info.path))
        roots = default_allowed_roots(base / "station.yaml", root)
        resolved = resolve_config(
            config,
            source=info.config_path,
            roots=roots,
            base_dir=base,
            load_producer=False,
            check_golden=False,
        )
        return ActiveConfig(
            config, resolved, info.name, info.path, info.path / "banks", digest, info.manifest
        )
    except ConfigError as exc:
        return SafeMode(str(exc).replace("\n", " | "))
    except Exception as exc:  # never crash the boot: whatever happened becomes the safe-mode reason
        log.exception("loading the active config failed")
        return SafeMode(f"cannot load the active config: {type(exc).__name__}: {exc}")
