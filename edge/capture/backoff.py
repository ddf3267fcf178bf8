"""Bounded exponential backoff for reconnection attempts."""

from __future__ import annotations

import time
from collections.abc import Callable

from edge.capture.settings import ReconnectPolicy


class Backoff:
    """Schedules attempts: immediately, then ``initial``, ``2*initial``, ... capped at ``max_delay_s``.

    The clock is injectable so the schedule is tested without sleeping.
    """

    def __init__(self, policy: ReconnectPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._failures = 0
        self._next_at = clock()

    @property
    def failures(self) -> int:
        """Consecutive failed attempts since the last :meth:`reset`."""
        return self._failures

    @property
    def exhausted(self) -> bool:
        """Whether the policy's ``max_attempts`` is used up."""
        limit = self._policy.max_attempts
        return limit is not None and self._failures >= limit

    def due_in(self) -> float:
        """Seconds until the next attempt may start (0 when due)."""
        return max(0.0, self._next_at - self._clock())

    def current_delay(self) -> float:
        """Delay that follows the current number of failures."""
        if self._failures == 0:
            return 0.0
        delay = self._policy.initial_delay_s * 2 ** (self._failures - 1)
        return float(min(delay, self._policy.max_delay_s))

    def failed(self) -> float:
        """Record a failed attempt; returns the delay before the next one."""
        self._failures += 1
        delay = self.current_delay()
        self._next_at = self._clock() + delay
        return delay

    def reset(self) -> None:
        """Record success: the next loss starts again with an immediate attempt."""
        self._failures = 0
        self._next_at = self._clock()
