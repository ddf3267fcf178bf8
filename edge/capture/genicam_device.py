"""Opening a GenTL producer and one of its devices through harvesters.

harvesters and genicam are untyped; their objects are ``Any`` here and never leave the ``genicam_*`` modules.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from harvesters.core import Harvester

from edge.capture.errors import CaptureConfigError
from edge.capture.settings import GenICamSettings

log = logging.getLogger(__name__)


class Producer:
    """A loaded GenTL producer (one harvesters ``Harvester``) and its device list."""

    def __init__(self, cti: Path) -> None:
        self._cti = cti
        self._harvester: Any | None = None

    @property
    def cti(self) -> Path:
        """Path of the producer file."""
        return self._cti

    @property
    def harvester(self) -> Any:
        """The open ``Harvester``."""
        if self._harvester is None:
            raise RuntimeError("producer is not open")
        return self._harvester

    def open(self) -> None:
        """Load the producer and enumerate its devices.

        Raises:
            CaptureConfigError: The ``.cti`` file is missing or cannot be loaded.

        """
        if not self._cti.is_file():
            raise CaptureConfigError(f"camera: GenTL producer {self._cti} does not exist")
        harvester = Harvester()
        try:
            harvester.add_file(str(self._cti), check_existence=True, check_validity=True)
            harvester.update()
        except Exception as exc:
            harvester.reset()
            raise CaptureConfigError(f"camera: cannot load GenTL producer {self._cti}: {exc}") from exc
        self._harvester = harvester

    def refresh(self) -> None:
        """Enumerate devices again (after a loss the device may come back under a new handle)."""
        self.harvester.update()

    def close(self) -> None:
        """Release the producer; idempotent."""
        if self._harvester is not None:
            try:
                self._harvester.reset()
            except Exception:  # releasing a producer whose device vanished can fail; nothing left to do
                log.debug("error while releasing producer %s", self._cti, exc_info=True)
            self._harvester = None


def describe_devices(harvester: Any) -> str:
    """One line per device: index, serial, id, model (for error messages)."""
    lines = [
        f"  [{i}] serial={info.serial_number!r} id={info.id_!r} model={info.model!r}"
        for i, info in enumerate(harvester.device_info_list)
    ]
    return "\n".join(lines) if lines else "  (no devices)"


def _search_key(harvester: Any, settings: GenICamSettings) -> int | dict[str, str]:
    devices = harvester.device_info_list
    if settings.serial is not None:
        return {"serial_number": settings.serial}
    if settings.device_id is not None:
        return {"id_": settings.device_id}
    if settings.index is not None:
        if settings.index >= len(devices):
            raise CaptureConfigError(
                f"camera: index {settings.index} but the producer lists {len(devices)} device(s):\n"
                + describe_devices(harvester)
            )
        return settings.index
    if len(devices) != 1:
        # Taking "the first" of several cameras would silently inspect the wrong station's parts.
        raise CaptureConfigError(
            f"camera: no serial/device_id/index given and the producer lists {len(devices)} device(s):\n"
            + describe_devices(harvester)
        )
    return 0


def open_acquirer(harvester: Any, settings: GenICamSettings) -> Any:
    """Create the harvesters ``ImageAcquirer`` for the selected device.

    Raises:
        CaptureConfigError: No device (or several) match the selector; the message lists the devices.

    """
    key = _search_key(harvester, settings)
    in_main = threading.current_thread() is threading.main_thread()
    previous_sigint = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        acquirer = harvester.create(key)
    except (ValueError, IndexError) as exc:
        raise CaptureConfigError(
            f"camera: cannot open device {key!r}: {exc}. Devices:\n{describe_devices(harvester)}"
        ) from exc
    finally:
        # harvesters installs its own SIGINT handler when created on the main thread; the station owns
        # signal handling (clean shutdown on SIGINT/SIGTERM), so put the previous handler back.
        if in_main and previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)
    return acquirer


def destroy_acquirer(acquirer: Any) -> None:
    """Stop and release an acquirer, tolerating one whose device is already gone."""
    try:
        acquirer.destroy()
    except Exception:  # a lost device makes every GenTL call fail; the handle is released anyway
        log.debug("error while destroying image acquirer", exc_info=True)
