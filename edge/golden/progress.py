"""Progress of a SKU's bank build for the line engineer: a bar per step on a terminal, a log line per step.

Enrolling a SKU with hundreds of golden images and configuring it takes minutes on a small station, so the
flash shows where it is: encoding the golden images, their line-shown copies, the patch memory, the golden
parts against their peers and as the line shows them, the synthetic defects (the steps
:meth:`edge.inspection.inspector.Inspector.enroll` reports). On a terminal each step has a bar (stderr);
in a log (CI, systemd) each finished step is one line with its duration, so a slow flash says which step
was slow.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)


class StepProgress:
    """A :data:`edge.inspection.types.Progress` that draws one bar per step of one SKU.

    Use as a context manager around the build (the last bar is closed on exit, also on error).
    """

    def __init__(self, sku: str, enabled: bool | None = None) -> None:
        """Report the steps of ``sku``; ``enabled``: bars on (True), off (False), on a terminal (None)."""
        self.sku = sku
        self.enabled = enabled
        self.step: str | None = None
        self.total = 0
        self.bar: tqdm[Any] | None = None
        self.started = 0.0
        self.finished: list[tuple[str, int, float]] = []  # (step, total, seconds)

    def __call__(self, step: str, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` items of ``step`` are done."""
        if step != self.step:
            self._close()
            self.step, self.total, self.started = step, total, time.perf_counter()
            self.bar = tqdm(
                total=total,
                desc=f"{self.sku}: {step}",
                disable=None if self.enabled is None else not self.enabled,
                leave=False,
            )
        if self.bar is not None:
            self.bar.n = done
            self.bar.refresh()

    def _close(self) -> None:
        if self.step is None:
            return
        seconds = time.perf_counter() - self.started
        self.finished.append((self.step, self.total, seconds))
        size = f" ({self.total})" if self.total > 1 else ""
        log.info("SKU %s: %s%s in %.1f s", self.sku, self.step, size, seconds)
        if self.bar is not None:
            self.bar.close()
        self.step, self.bar = None, None

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()
