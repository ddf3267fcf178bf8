from __future__ import annotations

import pytest

from edge.capture.backoff import Backoff
from edge.capture.settings import ReconnectPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_attempt_is_immediate_then_delays_double_up_to_the_cap() -> None:
    clock = FakeClock()
    backoff = Backoff(ReconnectPolicy(initial_delay_s=0.5, max_delay_s=3.0), clock)
    assert backoff.due_in() == 0.0
    assert [backoff.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert backoff.due_in() == 3.0
    clock.now += 2.0
    assert backoff.due_in() == pytest.approx(1.0)
    clock.now += 5.0
    assert backoff.due_in() == 0.0


def test_reset_starts_over() -> None:
    backoff = Backoff(ReconnectPolicy(initial_delay_s=0.5, max_delay_s=3.0), FakeClock())
    backoff.failed()
    backoff.failed()
    backoff.reset()
    assert backoff.failures == 0 and backoff.due_in() == 0.0 and backoff.failed() == 0.5


def test_exhausted_only_with_a_limit() -> None:
    unlimited = Backoff(ReconnectPolicy(), FakeClock())
    limited = Backoff(ReconnectPolicy(max_attempts=2), FakeClock())
    for _ in range(5):
        unlimited.failed()
    limited.failed()
    assert not unlimited.exhausted and not limited.exhausted
    limited.failed()
    assert limited.exhausted


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_delay_s": 0.0}, {"initial_delay_s": 2.0, "max_delay_s": 1.0}, {"max_attempts": 0}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="reconnect"):
        ReconnectPolicy(**kwargs)  # type: ignore[arg-type]
