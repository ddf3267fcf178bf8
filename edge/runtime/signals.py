"""The station's signal handling: SIGTERM/SIGINT stop it cleanly, SIGHUP asks for a reload."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


def install_signals(stop: Callable[[str], None], reload: Callable[[], None]) -> dict[int, Any]:
    """Install the handlers; returns the previous ones (for :func:`restore_signals`).

    Args:
        stop: Called with the signal's name on SIGTERM or SIGINT.
        reload: Called on SIGHUP.

    Returns:
        The previous handlers; empty off the main thread, where Python cannot install handlers.

    """
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop(signal.Signals(signum).name)

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload()

    for signum, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop), (signal.SIGHUP, on_hup)):
        previous[signum] = signal.signal(signum, handler)
    return previous


def restore_signals(previous: dict[int, Any]) -> None:
    """Put the previous signal handlers back."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
