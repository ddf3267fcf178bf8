"""Applying capture settings to a device's GenICam node map (SFNC feature names).

A pure function of (node map, settings): it writes features and reports what it had to emulate, and the
caller decides how to log that (once per source, not once per reconnect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genicam import genapi

from edge.capture.convert import check_pixel_format
from edge.capture.errors import CaptureConfigError
from edge.capture.settings import GenICamSettings, Roi, TriggerMode


@dataclass(frozen=True)
class DeviceSetup:
    """What :func:`configure_device` achieved.

    Attributes:
        software_crop: ROI to cut from each converted frame when the device cannot apply it itself.
        trigger_emulated: The requested software trigger is emulated on a free-running device.
        free_running: The device streams continuously (free-run, or a trigger mode it lacks).
        notes: One human-readable sentence per emulated or skipped feature (for a WARNING log line).

    """

    software_crop: Roi | None
    trigger_emulated: bool
    free_running: bool
    notes: tuple[str, ...]


def _node(node_map: Any, name: str) -> Any | None:
    """Return the node ``name`` when the device implements it and it is currently available."""
    if not node_map.has_node(name):
        return None
    node = getattr(node_map, name)
    return node if genapi.is_available(node) else None


def _writable(node_map: Any, name: str) -> Any | None:
    node = _node(node_map, name)
    return node if node is not None and genapi.is_writable(node) else None


def _write(node: Any, feature: str, value: object) -> None:
    try:
        node.value = value
    except Exception as exc:  # genapi raises OutOfRange/InvalidArgument/Access exceptions, all untyped
        raise CaptureConfigError(f"camera: cannot set {feature}={value!r}: {exc}") from exc


def _write_int(node: Any, feature: str, value: int) -> None:
    """Write an integer feature after checking range and increment (messages a line engineer can act on)."""
    low, high, inc = int(node.min), int(node.max), max(1, int(node.inc))
    if not low <= value <= high:
        raise CaptureConfigError(f"camera: {feature}={value} outside the device range [{low}, {high}]")
    if (value - low) % inc:
        below = value - (value - low) % inc
        raise CaptureConfigError(
            f"camera: {feature}={value} is not a valid step (device minimum {low}, increment {inc}); "
            f"use {below} or {below + inc}"
        )
    _write(node, feature, value)


def _write_enum(node: Any, feature: str, value: str) -> None:
    symbols = tuple(str(s) for s in node.symbolics)
    if value not in symbols:
        raise CaptureConfigError(f"camera: {feature}={value!r} not offered by the device (offers {symbols})")
    _write(node, feature, value)


def _set_pixel_format(node_map: Any, pixel_format: str | None) -> list[str]:
    if pixel_format is None:
        return []
    check_pixel_format(pixel_format)
    node = _writable(node_map, "PixelFormat")
    if node is None:
        return [f"PixelFormat not writable; keeping the device's format instead of {pixel_format}"]
    _write_enum(node, "PixelFormat", pixel_format)
    return []


def _set_roi(node_map: Any, roi: Roi | None, allow_emulation: bool) -> tuple[Roi | None, list[str]]:
    if roi is None:
        return None, []
    width, height = _writable(node_map, "Width"), _writable(node_map, "Height")
    off_x, off_y = _writable(node_map, "OffsetX"), _writable(node_map, "OffsetY")
    has_size = width is not None and height is not None
    has_offset = off_x is not None and off_y is not None
    wants_offset = roi.offset_x > 0 or roi.offset_y > 0
    if has_size and (has_offset or not wants_offset):
        if off_x is not None and off_y is not None:
            # Offsets first to 0 so that any requested width fits; then size; then the real offsets.
            _write(off_x, "OffsetX", 0)
            _write(off_y, "OffsetY", 0)
        _write_int(width, "Width", roi.width)
        _write_int(height, "Height", roi.height)
        if off_x is not None and off_y is not None:
            _write_int(off_x, "OffsetX", roi.offset_x)
            _write_int(off_y, "OffsetY", roi.offset_y)
        return None, []
    missing = "Width/Height" if not has_size else "OffsetX/OffsetY"
    if not allow_emulation:
        raise CaptureConfigError(f"camera: ROI {roi} needs {missing}, which the device does not offer")
    if has_size:
        # Transfer only what the crop needs: the sensor's top-left corner up to the ROI's far edge.
        _write_int(width, "Width", roi.offset_x + roi.width)
        _write_int(height, "Height", roi.offset_y + roi.height)
    return roi, [f"device lacks {missing}; ROI {roi} is cropped in software"]


def _set_frame_rate(node_map: Any, rate_hz: float | None) -> list[str]:
    if rate_hz is None:
        return []
    enable = _writable(node_map, "AcquisitionFrameRateEnable")
    if enable is not None:
        _write(enable, "AcquisitionFrameRateEnable", True)
    for name in ("AcquisitionFrameRate", "AcquisitionFrameRateAbs"):
        node = _writable(node_map, name)
        if node is not None:
            low, high = float(node.min), float(node.max)
            if not low <= rate_hz <= high:
                raise CaptureConfigError(f"camera: {name}={rate_hz} outside the device range [{low}, {high}]")
            _write(node, name, float(rate_hz))
            return []
    return [f"device lacks AcquisitionFrameRate; running at its own rate instead of {rate_hz} Hz"]


def _set_exposure(node_map: Any, exposure_us: float | None) -> list[str]:
    if exposure_us is None:
        return []
    auto = _writable(node_map, "ExposureAuto")
    if auto is not None and "Off" in tuple(str(s) for s in auto.symbolics):
        _write(auto, "ExposureAuto", "Off")
    for name in ("ExposureTime", "ExposureTimeAbs"):
        node = _writable(node_map, name)
        if node is not None:
            low, high = float(node.min), float(node.max)
            if not low <= exposure_us <= high:
                raise CaptureConfigError(
                    f"camera: {name}={exposure_us} outside the device range [{low}, {high}]"
                )
            _write(node, name, float(exposure_us))
            return []
    return [f"device lacks ExposureTime; keeping its exposure instead of {exposure_us} us"]


def _trigger_sources(node_map: Any) -> tuple[str, ...]:
    if _writable(node_map, "TriggerMode") is None:
        return ()
    source = _writable(node_map, "TriggerSource")
    return tuple(str(s) for s in source.symbolics) if source is not None else ()


def _set_activation(node_map: Any, activation: str) -> list[str]:
    """Write ``TriggerActivation`` (which signal edge starts a frame); a device without it is noted."""
    node = _writable(node_map, "TriggerActivation")
    if node is None:
        return [f"device lacks TriggerActivation; keeping its trigger edge instead of {activation}"]
    _write_enum(node, "TriggerActivation", activation)
    return []


def _set_trigger(node_map: Any, settings: GenICamSettings) -> tuple[bool, list[str]]:
    mode = settings.trigger
    selector = _writable(node_map, "TriggerSelector")
    if selector is not None and "FrameStart" in tuple(str(s) for s in selector.symbolics):
        _write(selector, "TriggerSelector", "FrameStart")
    trigger_mode = _writable(node_map, "TriggerMode")
    if mode is TriggerMode.FREE_RUN:
        if trigger_mode is not None:
            # A previous session may have left the camera waiting for triggers.
            _write(trigger_mode, "TriggerMode", "Off")
        return False, []
    wanted = "Software" if mode is TriggerMode.SOFTWARE else settings.trigger_line
    native = wanted in _trigger_sources(node_map)
    if mode is TriggerMode.SOFTWARE:
        native = native and _node(node_map, "TriggerSoftware") is not None
    if native:
        _write(_writable(node_map, "TriggerSource"), "TriggerSource", wanted)
        notes = []
        if mode is TriggerMode.HARDWARE:
            notes = _set_activation(node_map, settings.trigger_activation)
        _write(trigger_mode, "TriggerMode", "On")
        return False, notes
    if not settings.allow_emulation:
        raise CaptureConfigError(f"camera: {mode.value} trigger ({wanted}) not offered by the device")
    if trigger_mode is not None:
        _write(trigger_mode, "TriggerMode", "Off")
    if mode is TriggerMode.SOFTWARE:
        return True, ["device lacks software trigger; emulated: each trigger() takes the next free-run frame"]
    return False, [
        f"device lacks hardware trigger on {wanted}; acquiring free-run, every frame is treated as a part"
    ]


def _set_features(node_map: Any, features: tuple[tuple[str, bool | int | float | str], ...]) -> None:
    """Write the further features in order (``camera.features``), each value checked against its node."""
    for name, value in features:
        where = f"features.{name}"
        if not node_map.has_node(name):
            raise CaptureConfigError(f"camera: {where}: the device has no feature {name}")
        node = getattr(node_map, name)
        if not genapi.is_available(node) or not genapi.is_writable(node):
            raise CaptureConfigError(f"camera: {where}: the device does not let {name} be written now")
        _write_typed(node, where, value)


def _write_typed(node: Any, where: str, value: bool | int | float | str) -> None:
    def wrong(expected: str) -> CaptureConfigError:
        return CaptureConfigError(f"camera: {where}={value!r}: expected {expected}")

    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(node, genapi.IBoolean):
        if not isinstance(value, bool):
            raise wrong("true or false")
        _write(node, where, value)
    elif isinstance(node, genapi.IInteger):
        if not number or not isinstance(value, int):
            raise wrong("an integer")
        _write_int(node, where, value)
    elif isinstance(node, genapi.IFloat):
        if not number:
            raise wrong("a number")
        low, high = float(node.min), float(node.max)
        if not low <= float(value) <= high:
            raise CaptureConfigError(f"camera: {where}={value} outside the device range [{low:g}, {high:g}]")
        _write(node, where, float(value))
    elif isinstance(node, genapi.IEnumeration):
        if not isinstance(value, str):
            raise wrong(f"one of {tuple(str(s) for s in node.symbolics)}")
        _write_enum(node, where, value)
    elif isinstance(node, genapi.IString):
        if not isinstance(value, str):
            raise wrong("a string")
        _write(node, where, value)
    else:
        raise CaptureConfigError(f"camera: {where}: not a value feature (a command or a category)")


def configure_device(node_map: Any, settings: GenICamSettings) -> DeviceSetup:
    """Write pixel format, ROI, frame rate, exposure, trigger and further features (before acquisition).

    Args:
        node_map: The remote device's node map (``ImageAcquirer.remote_device.node_map``).
        settings: What to apply.

    Returns:
        What had to be emulated or skipped.

    Raises:
        CaptureConfigError: A value is rejected by the device or out of its range/increment, or a missing
            feature cannot be emulated (or emulation is disabled). The message names the feature and value.
        UnsupportedPixelFormat: The requested pixel format has no conversion.

    """
    notes: list[str] = []
    acq_mode = _writable(node_map, "AcquisitionMode")
    if acq_mode is not None and "Continuous" in tuple(str(s) for s in acq_mode.symbolics):
        _write(acq_mode, "AcquisitionMode", "Continuous")
    notes += _set_pixel_format(node_map, settings.pixel_format)
    crop, roi_notes = _set_roi(node_map, settings.roi, settings.allow_emulation)
    notes += roi_notes
    notes += _set_frame_rate(node_map, settings.frame_rate_hz)
    notes += _set_exposure(node_map, settings.exposure_us)
    emulated, trigger_notes = _set_trigger(node_map, settings)
    notes += trigger_notes
    _set_features(node_map, settings.features)
    native_trigger = settings.trigger is not TriggerMode.FREE_RUN and not trigger_notes
    return DeviceSetup(
        software_crop=crop,
        trigger_emulated=emulated,
        free_running=not native_trigger,
        notes=tuple(notes),
    )
