"""Turn the station config (pydantic, user-facing) into the settings objects of capture and MQTT.

The config models belong to ``edge.config`` and the settings dataclasses to ``edge.capture`` / ``edge.mqtt``;
this module is the one place that maps one onto the other, so neither package depends on the other.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edge.capture.settings import (
    CameraSettings,
    GenICamSettings,
    ReplaySettings,
    Roi,
    SkuSource,
    TriggerMode,
    simulated_cti,
)
from edge.config.resolve import ResolvedConfig
from edge.config.root import StationConfig
from edge.mqtt.client import MqttSettings, TlsSettings
from edge.mqtt.sparkplug import SparkplugSettings
from edge.opcua.settings import OpcUaAccount, OpcUaSettings


def trigger_mode(config: StationConfig) -> TriggerMode:
    """How parts start on this station."""
    return TriggerMode(config.camera.trigger.mode)


def camera_settings(resolved: ResolvedConfig, *, simulated: bool = False) -> CameraSettings:
    """Capture settings of the configured source.

    Args:
        resolved: The resolved config (absolute paths).
        simulated: Use the simulated GenICam camera (``viky.cti`` from the ``genicam`` wheel) instead of the
            configured source, keeping the configured trigger mode.

    """
    cam = resolved.config.camera
    mode = trigger_mode(resolved.config)
    if simulated:
        # viky streams 640x480 Mono8/RGBa8; a square ROI keeps the aspect ratio of square golden images.
        return GenICamSettings(
            cti=simulated_cti(),
            index=0,
            name="viky",
            pixel_format="Mono8",
            trigger=TriggerMode.SOFTWARE if mode is TriggerMode.SOFTWARE else TriggerMode.FREE_RUN,
            max_frame_pixels=cam.max_frame_pixels,
        )
    if cam.source == "replay":
        assert cam.replay is not None  # the config model guarantees it for source replay
        if mode is TriggerMode.HARDWARE:
            raise ValueError("camera.trigger.mode: hardware trigger is not possible with a replay source")
        return ReplaySettings(
            folder=resolved.paths.get("camera.replay.dir", Path(cam.replay.dir)),
            rate_hz=cam.replay.fps,
            loop=cam.replay.loop,
            trigger=mode,
            # A JSON sidecar next to an image may name its SKU (mixed-SKU replays); images without one are
            # inspected as the selected SKU.
            sku_source=SkuSource.SIDECAR,
            name=f"replay:{Path(cam.replay.dir).name}",
            max_frame_pixels=cam.max_frame_pixels,
        )
    roi = None
    if cam.roi is not None:
        roi = Roi(width=cam.roi.width, height=cam.roi.height, offset_x=cam.roi.x, offset_y=cam.roi.y)
    return GenICamSettings(
        cti=resolved.paths.get("camera.cti", Path(str(cam.cti))),
        serial=cam.device.serial,
        device_id=cam.device.id,
        index=cam.device.index,
        pixel_format=cam.pixel_format,
        roi=roi,
        frame_rate_hz=cam.frame_rate,
        exposure_us=cam.exposure_us,
        num_buffers=cam.buffers,
        trigger=mode,
        trigger_line=cam.trigger.line or "Line0",
        trigger_activation=cam.trigger.activation,
        max_frame_pixels=cam.max_frame_pixels,
        features=tuple(cam.features.items()),
    )


def mqtt_settings(resolved: ResolvedConfig, *, validate_outgoing: bool = False) -> MqttSettings:
    """MQTT connection settings with secrets and TLS files resolved."""
    config = resolved.config
    section = config.mqtt
    tls = None
    if section.tls is not None:
        tls = TlsSettings(
            ca_file=resolved.paths["mqtt.tls.ca"],
            cert_file=resolved.paths.get("mqtt.tls.cert"),
            key_file=resolved.paths.get("mqtt.tls.key"),
        )
    secret = resolved.secrets.get("mqtt.password")
    return MqttSettings(
        host=section.host,
        port=section.port,
        topic_root=config.topic_root,
        client_id=config.client_id,
        username=section.username,
        password=None if secret is None else secret.get_secret_value(),
        tls=tls,
        keepalive_s=section.keepalive,
        resend_window_s=section.resend_window,
        resend_delay_s=section.resend_delay,
        validate_outgoing=validate_outgoing,
    )


def sparkplug_settings(resolved: ResolvedConfig, data_dir: Path) -> SparkplugSettings | None:
    """Sparkplug B edge node settings (same broker and credentials as the JSON link), ``None`` when off.

    The bdSeq is kept in ``<data_dir>/sparkplug-bdseq`` so that a restarted station goes on counting.
    """
    ids = resolved.config.sparkplug_ids()
    if ids is None:
        return None
    connection = replace(mqtt_settings(resolved), client_id=ids.client_id)
    return SparkplugSettings(
        connection=connection,
        group_id=ids.group_id,
        node_id=ids.node_id,
        device_id=ids.device_id,
        bd_seq_file=data_dir / "sparkplug-bdseq",
        primary_host_id=ids.primary_host_id,
    )


def opcua_settings(resolved: ResolvedConfig, data_dir: Path) -> OpcUaSettings | None:
    """OPC UA server settings, ``None`` when ``opcua.enabled`` is off.

    Without a configured certificate the server makes a self-signed one in ``<data_dir>/opcua/`` at first
    start and keeps it (clients that pinned it keep trusting the station across restarts).
    """
    config = resolved.config
    section = config.opcua
    if not section.enabled:
        return None
    generated = section.certificate is None
    own = data_dir / "opcua"
    station = config.station
    return OpcUaSettings(
        bind=section.bind,
        port=section.port,
        certificate=own / "server-cert.der" if generated else resolved.paths["opcua.certificate"],
        private_key=own / "server-key.pem" if generated else resolved.paths["opcua.private_key"],
        generate_certificate=generated,
        security=tuple(section.security),
        accounts=tuple(
            OpcUaAccount(u.name, u.password_hash, controller=u.role == "controller") for u in section.users
        ),
        allow_anonymous=section.allow_anonymous,
        trusted_clients=resolved.paths.get("opcua.trusted_clients"),
        application_uri=f"urn:edge-inspection:{station.site}:{station.line}:{station.id}",
        server_name=f"edge inspection {station.line}/{station.id}",
        station_id=station.id,
    )
