"""Feedback actions (golden promotion, threshold change) run in the background, one at a time.

Such an action is a whole flash: bank build, self-test, install, the running station's confirmation. It can
take minutes on a large golden set, longer than a browser or a proxy waits for a page. The form starts a job
and redirects to the statistics page, which shows the job running (and refreshes itself) until it has
committed or rolled back, and then its outcome. Every finished job is recorded in the index like any
feedback action.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.review.feedback import FeedbackError, FeedbackResult

log = logging.getLogger(__name__)

#: Finished jobs kept for their result page (the index keeps every outcome for good).
KEEP_FINISHED = 20


@dataclass
class FeedbackJob:
    """One feedback action and, once finished, its outcome (``result``, or ``error`` for a refusal)."""

    job_id: str
    kind: str
    sku: str
    user: str
    started: float
    finished: float | None = None
    result: FeedbackResult | None = None
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        """Still flashing."""
        return not self.done.is_set()


class FeedbackJobs:
    """Runs feedback actions in a worker thread, one at a time (a second one is refused while one runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, FeedbackJob] = {}

    def start(
        self,
        kind: str,
        sku: str,
        user: str,
        action: Callable[[], FeedbackResult],
        on_done: Callable[[FeedbackJob], None],
    ) -> FeedbackJob:
        """Start ``action`` in the background; ``on_done(job)`` runs in the worker when it has finished.

        Raises:
            FeedbackError: Another feedback action is still running.

        """
        with self._lock:
            busy = [j for j in self._jobs.values() if j.running]
            if busy:
                other = busy[0]
                raise FeedbackError(
                    f"{other.kind} on {other.sku} by {other.user} is still running: wait for its outcome"
                )
            job = FeedbackJob(secrets.token_hex(6), kind, sku, user, time.time())
            self._jobs[job.job_id] = job
            finished = [j for j in self._jobs.values() if not j.running]
            for old in sorted(finished, key=lambda j: j.started)[: max(0, len(finished) - KEEP_FINISHED)]:
                del self._jobs[old.job_id]
        threading.Thread(target=self._run, args=(job, action, on_done), name=f"feedback-{job.job_id}").start()
        return job

    def get(self, job_id: str) -> FeedbackJob | None:
        """The job with this id, if it is still known."""
        with self._lock:
            return self._jobs.get(job_id)

    def _run(
        self, job: FeedbackJob, action: Callable[[], FeedbackResult], on_done: Callable[[FeedbackJob], None]
    ) -> None:
        try:
            job.result = action()
        except FeedbackError as exc:
            job.error = str(exc)
        except Exception as exc:  # the worker must always finish its job, with a reason
            log.exception("feedback job %s failed", job.job_id)
            job.error = f"unexpected {type(exc).__name__}: {exc}"
        job.finished = time.time()
        try:
            on_done(job)
        except Exception:
            log.exception("recording feedback job %s failed", job.job_id)
        finally:
            job.done.set()
