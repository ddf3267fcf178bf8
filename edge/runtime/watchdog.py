"""Inspection workers and the watchdog that replaces a hung one.

Why threads that get abandoned, not a subprocess: a native call that hangs (a driver, an inference runtime)
cannot be interrupted from Python, in a thread or otherwise. A worker *process* could be killed, but every
frame would cross a process boundary (pickling 1 MB per part or a shared-memory ring) and a restart reloads
the encoders and banks (seconds, and twice the memory on a Jetson). Here each worker is a thread that takes
parts from the queue; the watchdog sees a worker that has held one part longer than ``hang_timeout_s``,
claims that part (it gets an ``ERROR`` verdict at once, so the PLC is answered), marks the worker abandoned
and starts a replacement. If the hung call ever returns, the abandoned worker sees the claim, drops its result
and exits. ONNX Runtime sessions accept concurrent ``Run`` calls, so the replacement can use the same
encoders. A stuck thread still holds whatever it holds: after ``max_abandoned`` live abandoned workers the
station reports a fault (a restart of the process is then the remedy).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.capture.part import Part

log = logging.getLogger(__name__)

#: Handles one dequeued part from start to verdict (runs on a worker thread).
ProcessFn = Callable[[Part, "WorkerTicket"], None]


class WorkerTicket:
    """Given to the process function with each part: lets it find out whether the watchdog took the part."""

    def __init__(self, worker: _Worker) -> None:
        self._worker = worker

    def release(self) -> bool:
        """Finish the part: ``True`` if this worker still owns it, ``False`` if the watchdog claimed it."""
        return self._worker.finish()


@dataclass(frozen=True)
class WatchdogSettings:
    """Watchdog knobs.

    Attributes:
        hang_timeout_s: A part held by a worker longer than this is declared hung.
        check_interval_s: How often the watchdog looks.
        max_abandoned: Live abandoned workers tolerated before the station reports a fault.

    """

    hang_timeout_s: float = 10.0
    check_interval_s: float = 0.25
    max_abandoned: int = 3


class _Worker:
    def __init__(self, index: int, generation: int, pool: InspectionWorkers) -> None:
        self.name = f"inspect-{index}.{generation}"
        self.index = index
        self.pool = pool
        self.lock = threading.Lock()
        self.current: Part | None = None
        self.started = 0.0
        self.abandoned = False
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)

    def run(self) -> None:
        pool = self.pool
        while not pool.stopping.is_set():
            with self.lock:
                if self.abandoned:
                    return
            try:
                part = pool.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            with self.lock:
                self.current = part
                self.started = time.monotonic()
            try:
                pool.process(part, WorkerTicket(self))
            except Exception:  # the process function handles inspection errors; this is a last resort
                log.exception("worker %s failed on part %s", self.name, part.part_id)
                if self.finish():
                    pool.on_lost(part, "internal error in the inspection worker (see the station log)")
            finally:
                with self.lock:
                    self.current = None
                    abandoned = self.abandoned
                pool.queue.task_done()
            if abandoned:
                log.warning("abandoned worker %s returned; exiting", self.name)
                return

    def finish(self) -> bool:
        with self.lock:
            if self.abandoned:
                return False
            self.current = None
            return True


class InspectionWorkers:
    """``count`` worker threads over ``parts`` plus a watchdog thread.

    Args:
        parts: The bounded inspection queue.
        process: Inspects one part and completes it; calls ``ticket.release()`` before publishing.
        on_lost: Called with a part whose worker hung (claimed by the watchdog) or crashed, and the reason;
            the part needs an ERROR verdict.
        on_fault: Called with a reason when too many workers are stuck, and ``None`` when that clears.
        count: Number of workers.
        settings: Watchdog settings.

    """

    def __init__(
        self,
        parts: queue.Queue[Part],
        process: ProcessFn,
        on_lost: Callable[[Part, str], None],
        on_fault: Callable[[str | None], None] | None = None,
        count: int = 1,
        settings: WatchdogSettings | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"need at least one worker, got {count}")
        self.queue = parts
        self.process = process
        self.on_lost = on_lost
        self.on_fault = on_fault
        self.settings = settings or WatchdogSettings()
        self.stopping = threading.Event()
        self.restarts = 0
        self._generation = 0
        self._workers = [_Worker(i, 0, self) for i in range(count)]
        self._abandoned: list[_Worker] = []
        self._faulted = False
        self._watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def start(self) -> None:
        """Start the workers and the watchdog."""
        for worker in self._workers:
            worker.thread.start()
        self._watchdog.start()

    def busy(self) -> int:
        """Workers holding a part now."""
        return sum(1 for w in self._workers if w.current is not None)

    @property
    def abandoned_alive(self) -> int:
        """Abandoned workers whose call has not returned yet."""
        return sum(1 for w in self._abandoned if w.thread.is_alive())

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop taking parts; joins workers that are idle (hung ones are left behind, they are daemons)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in [*(w.thread for w in self._workers), self._watchdog]:
            thread.join(max(0.0, deadline - time.monotonic()))

    def threads_alive(self) -> list[threading.Thread]:
        """Worker threads still running: after :meth:`stop`, those stuck in an inspection call."""
        return [w.thread for w in (*self._workers, *self._abandoned) if w.thread.is_alive()]

    def claim_busy(self) -> list[Part]:
        """Abandon every worker still holding a part (at stop, past the drain deadline); return the parts."""
        claimed = []
        for worker in self._workers:
            with worker.lock:
                if worker.current is None:
                    continue
                worker.abandoned = True
                claimed.append(worker.current)
        return claimed

    def _watch(self) -> None:
        s = self.settings
        while not self.stopping.wait(s.check_interval_s):
            now = time.monotonic()
            for i, worker in enumerate(self._workers):
                with worker.lock:
                    part = worker.current
                    age = now - worker.started
                    if part is None or age <= s.hang_timeout_s:
                        continue
                    worker.abandoned = True
                log.error(
                    "inspection of part %s hung for %.1f s: worker %s abandoned, starting a new one",
                    part.part_id,
                    age,
                    worker.name,
                )
                self._generation += 1
                self.restarts += 1
                self._abandoned.append(worker)
                replacement = _Worker(worker.index, self._generation, self)
                self._workers[i] = replacement
                replacement.thread.start()
                self.on_lost(
                    part, f"inspection hung for more than {s.hang_timeout_s:g} s; inference worker restarted"
                )
            self._check_fault()

    def _check_fault(self) -> None:
        stuck = self.abandoned_alive
        if self.on_fault is None:
            return
        if stuck >= self.settings.max_abandoned and not self._faulted:
            self._faulted = True
            self.on_fault(f"{stuck} inspection calls hung and never returned; restart the station")
        elif stuck < self.settings.max_abandoned and self._faulted:
            self._faulted = False
            self.on_fault(None)
