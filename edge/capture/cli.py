"""``edge capture``: check a camera from the command line before configuring a station.

``edge capture devices`` lists what a GenTL producer sees; ``edge capture grab`` opens one device with the
given settings, saves a few converted frames as PNG and prints the capture counters. Without ``--cti`` both
use the simulated camera shipped with the ``genicam`` wheel.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``capture`` command group to the ``edge`` parser."""
    parser = subparsers.add_parser("capture", help="list GenTL devices, grab test frames")
    sub = parser.add_subparsers(dest="capture_command", metavar="SUBCOMMAND")
    sub.required = True

    devices = sub.add_parser("devices", help="list the devices a GenTL producer sees")
    devices.add_argument("--cti", type=Path, help="GenTL producer (.cti); default: the simulated viky.cti")
    devices.set_defaults(func=_devices)

    grab = sub.add_parser("grab", help="grab frames from one device and save them as PNG")
    grab.add_argument("--cti", type=Path, help="GenTL producer (.cti); default: the simulated viky.cti")
    selector = grab.add_mutually_exclusive_group()
    selector.add_argument("--serial", help="device serial number")
    selector.add_argument("--device-id", help="GenTL device id")
    selector.add_argument("--index", type=int, help="position in the device list")
    grab.add_argument("--pixel-format", help="PFNC pixel format, e.g. Mono8, RGBa8, BayerRG8")
    grab.add_argument("--count", type=int, default=3, help="frames to grab (default 3)")
    grab.add_argument("--timeout", type=float, default=5.0, help="seconds to wait per frame (default 5)")
    grab.add_argument("--out", type=Path, default=Path("capture"), help="output folder (default ./capture)")
    grab.set_defaults(func=_grab)


def _cti(args: argparse.Namespace) -> Path:
    from edge.capture.settings import simulated_cti

    cti: Path | None = args.cti
    return cti if cti is not None else simulated_cti()


def _devices(args: argparse.Namespace) -> int:
    from edge.capture.errors import CaptureConfigError
    from edge.capture.genicam_device import Producer, describe_devices

    producer = Producer(_cti(args))
    try:
        producer.open()
    except CaptureConfigError as exc:
        print(f"error: {exc}")
        return 2
    try:
        print(f"{producer.cti}:\n{describe_devices(producer.harvester)}")
    finally:
        producer.close()
    return 0


def _grab(args: argparse.Namespace) -> int:
    import cv2

    from edge.capture.errors import CaptureError
    from edge.capture.genicam import GenICamSource
    from edge.capture.settings import GenICamSettings

    selected = args.serial is not None or args.device_id is not None or args.index is not None
    settings = GenICamSettings(
        cti=_cti(args),
        # The simulator lists three cameras; pick the first unless told otherwise.
        serial=args.serial if selected or args.cti is not None else "0",
        device_id=args.device_id,
        index=args.index,
        pixel_format=args.pixel_format,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with GenICamSource(settings) as source:
            for _ in range(args.count):
                frame = source.read(args.timeout)
                path = args.out / f"frame_{frame.seq:04d}.png"
                cv2.imwrite(str(path), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
                print(f"{path}: {frame.width}x{frame.height} from {frame.pixel_format}")
            print(source.stats)
    except CaptureError as exc:
        print(f"error: {exc}")
        return 2
    return 0
