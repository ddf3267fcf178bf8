"""Login throttling: growing delays after wrong passwords, by client address and, gently, by user name.

Two keys, two jobs:

* **The client address** is the guesser. After :data:`FREE_FAILURES` wrong passwords from one address
  (whatever names it tries: thirty names with one guess each count as thirty), every further attempt
  from it must wait, and the wait doubles with each failure up to :data:`ADDRESS_CAP_S`.
* **The user name** is the target of guessing spread over many addresses. Its delay grows the same way but
  stops at :data:`NAME_CAP_S`, short on purpose: whoever fails passwords for a real account can make its
  owner wait that long at most, never lock it out for good (attempts refused during a wait are not checked
  and do not count, so nobody can keep the wait going without waiting it out first).

Failures are forgotten after :data:`FORGET_S` without a new one, and a right password clears its name and
its address. Times come from a monotonic clock (a wall-clock step must not lift or extend a wait).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Wrong passwords allowed without any wait (typos happen at a gloved keyboard).
FREE_FAILURES = 3
#: First wait after the free failures; doubles with every further failure.
BASE_DELAY_S = 2.0
#: Longest wait of one client address.
ADDRESS_CAP_S = 900.0
#: Longest wait of one user name, from every address (see the module docstring).
NAME_CAP_S = 30.0
#: Failures older than this (since the last one) are forgotten.
FORGET_S = 3600.0
#: Keys kept at most; the stalest go first (a flood of made-up names must not grow memory without end).
MAX_KEYS = 10_000


@dataclass
class _Record:
    failures: int
    last: float


def delay_after(failures: int, cap_s: float) -> float:
    """Seconds to wait after ``failures`` consecutive wrong passwords (0 within the free ones)."""
    if failures <= FREE_FAILURES:
        return 0.0
    return float(min(cap_s, BASE_DELAY_S * 2.0 ** (failures - FREE_FAILURES - 1)))


class LoginThrottle:
    """Thread-safe bookkeeping of wrong passwords by client address and by user name.

    Args:
        clock: monotonic seconds (injectable so tests can move time instead of sleeping).

    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], _Record] = {}

    def _keys(self, address: str, name: str) -> tuple[tuple[tuple[str, str], float], ...]:
        return ((("address", address), ADDRESS_CAP_S), (("name", name), NAME_CAP_S))

    def wait_s(self, address: str, name: str) -> float:
        """Seconds before ``address`` may try a password for ``name`` again (0: it may try now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key, cap in self._keys(address, name):
                record = self._records.get(key)
                if record is None:
                    continue
                if now - record.last > FORGET_S:
                    del self._records[key]
                    continue
                wait = max(wait, record.last + delay_after(record.failures, cap) - now)
        return max(0.0, wait)

    def failed(self, address: str, name: str) -> None:
        """Count a wrong password given by ``address`` for ``name``."""
        now = self._clock()
        with self._lock:
            for key, _ in self._keys(address, name):
                record = self._records.get(key)
                if record is None or now - record.last > FORGET_S:
                    record = self._records[key] = _Record(0, now)
                record.failures += 1
                record.last = now
            if len(self._records) > MAX_KEYS:
                stalest = sorted(self._records, key=lambda k: self._records[k].last)
                for key in stalest[: len(self._records) - MAX_KEYS]:
                    del self._records[key]

    def succeeded(self, address: str, name: str) -> None:
        """A right password: the name and the address start afresh."""
        with self._lock:
            for key, _ in self._keys(address, name):
                self._records.pop(key, None)

    def failures(self, name: str) -> int:
        """Wrong passwords counted for ``name`` (for the log line that tells an engineer of an attack)."""
        with self._lock:
            record = self._records.get(("name", name))
            return 0 if record is None else record.failures
