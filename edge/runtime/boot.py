"""What the station boots into: a loaded config (:class:`Boot`) or safe mode, and safe mode's broker.

Never raises: a config that does not load becomes the safe-mode reason, and a safe-mode station still finds
the broker the broken config most likely names, so the line learns why it inspects nothing.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge.config.errors import ConfigError
from edge.config.mqtt import MqttSection
from edge.config.render import config_hash
from edge.config.resolve import ResolvedConfig, default_allowed_roots, load_and_resolve
from edge.config.station import StationSection
from edge.flash.active import SafeMode, load_active_config
from edge.mqtt.client import MqttSettings
from edge.runtime import adapters
from edge.runtime.options import RunOptions

log = logging.getLogger(__name__)


@dataclass
class Boot:
    """A config that loaded: what the station runs."""

    resolved: ResolvedConfig
    config_hash: str
    banks_dir: Path | None  # flashed banks (root mode); None: build them from the golden folders

    @property
    def config(self) -> Any:
        """The validated :class:`edge.config.StationConfig`."""
        return self.resolved.config


def load_boot(opts: RunOptions) -> Boot | SafeMode:
    """Load and resolve the config, or return the safe-mode reason. Never raises."""
    try:
        if opts.root is not None:
            active = load_active_config(opts.root)
            if isinstance(active, SafeMode):
                return active
            return Boot(active.resolved, active.config_hash, active.banks_dir)
        assert opts.config is not None
        resolved = load_and_resolve(opts.config, roots=default_allowed_roots(opts.config))
        return Boot(resolved, config_hash(resolved.config), None)
    except ConfigError as exc:
        return SafeMode(str(exc).replace("\n", " | "))
    except Exception as exc:  # whatever went wrong is the safe-mode reason; never crash-loop
        log.exception("loading the config failed")
        return SafeMode(f"cannot load the config: {type(exc).__name__}: {exc}")


def safe_mode_mqtt(opts: RunOptions, boot: Boot | None) -> tuple[MqttSettings, Path]:
    """Broker and data dir in safe mode: from the config if it got that far, else best effort."""
    if boot is not None:
        data_dir = boot.resolved.paths.get("storage.data_dir", Path(boot.config.storage.data_dir))
        try:
            return adapters.mqtt_settings(boot.resolved), data_dir
        except Exception:
            log.exception("MQTT settings of the config are unusable in safe mode")
    return _best_effort_mqtt(_config_file(opts))


def _config_file(opts: RunOptions) -> Path | None:
    if opts.config is not None:
        return opts.config
    assert opts.root is not None
    candidate = opts.root / "current" / "station.yaml"
    return candidate if candidate.is_file() else None


def _best_effort_mqtt(config_file: Path | None) -> tuple[MqttSettings, Path]:
    """Salvage the ``station`` and ``mqtt`` sections of a config that does not validate as a whole.

    A station in safe mode must still tell the line why; its broker is most likely the one the broken config
    names. Falls back to ``localhost:1883`` and ``edge/unconfigured/<hostname>``. Password references are not
    followed here (a safe-mode station on an authenticated broker needs a config that at least resolves).
    """
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
            raw = loaded if isinstance(loaded, dict) else {}
        except Exception as exc:
            log.warning("config %s is not even YAML: %s", config_file, exc)
    host = socket.gethostname() or "station"
    root = f"edge/unconfigured/{''.join(c if c.isalnum() or c in '-_' else '_' for c in host)}"
    client_id = f"edge-safe-mode-{host}"
    section = MqttSection()
    try:
        section = MqttSection.model_validate(raw.get("mqtt") or {})
    except Exception as exc:
        log.warning("mqtt section unusable (%s); using %s:%d", exc, section.host, section.port)
    try:
        station = StationSection.model_validate(raw.get("station"))
        root = section.topic_root or f"{station.site}/{station.line}/{station.id}"
        client_id = section.client_id or f"edge-{station.id}"
    except Exception as exc:
        log.warning("station section unusable (%s); publishing under %s", exc, root)
    base = config_file.resolve().parent if config_file is not None else Path.cwd()
    data_dir = base / "safe-mode-data"
    storage = raw.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("data_dir"), str):
        data_dir = base / storage["data_dir"]
    settings = MqttSettings(
        host=section.host,
        port=section.port,
        topic_root=root,
        client_id=client_id,
        username=section.username,
        keepalive_s=section.keepalive,
    )
    return settings, data_dir
