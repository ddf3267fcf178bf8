"""Login throttling by client address and by user name, on a clock the test moves."""

from __future__ import annotations

import pytest

from edge.review.throttle import (
    ADDRESS_CAP_S,
    FORGET_S,
    FREE_FAILURES,
    NAME_CAP_S,
    LoginThrottle,
    delay_after,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_typos_are_free_then_waits_double_up_to_the_cap() -> None:
    assert [delay_after(n, ADDRESS_CAP_S) for n in range(1, FREE_FAILURES + 1)] == [0.0] * FREE_FAILURES
    waits = [delay_after(FREE_FAILURES + n, ADDRESS_CAP_S) for n in range(1, 5)]
    assert waits == sorted(waits) and waits[1] == 2 * waits[0]
    assert delay_after(100, ADDRESS_CAP_S) == ADDRESS_CAP_S
    assert delay_after(100, NAME_CAP_S) == NAME_CAP_S


def test_one_address_trying_many_names_waits(clock: Clock) -> None:
    throttle = LoginThrottle(clock)
    for i in range(FREE_FAILURES + 3):
        throttle.failed("10.0.0.66", f"name{i}")
    assert throttle.wait_s("10.0.0.66", "someone-new") > 0.0
    assert throttle.wait_s("10.0.0.7", "someone-new") == 0.0  # other clients are not slowed


def test_an_outsider_cannot_lock_a_real_account_for_long(clock: Clock) -> None:
    throttle = LoginThrottle(clock)
    for _ in range(50):  # many wrong passwords for olga, from many addresses
        for attacker in range(20):
            throttle.failed(f"10.9.0.{attacker}", "olga")
    owner_wait = throttle.wait_s("10.0.0.7", "olga")
    assert 0.0 < owner_wait <= NAME_CAP_S
    clock.now += NAME_CAP_S
    assert throttle.wait_s("10.0.0.7", "olga") == 0.0
    assert throttle.wait_s("10.9.0.1", "olga") > NAME_CAP_S  # the attackers themselves still wait


def test_a_right_password_starts_afresh_and_old_failures_are_forgotten(clock: Clock) -> None:
    throttle = LoginThrottle(clock)
    for _ in range(FREE_FAILURES + 2):
        throttle.failed("10.0.0.7", "olga")
    assert throttle.wait_s("10.0.0.7", "olga") > 0
    throttle.succeeded("10.0.0.7", "olga")
    assert throttle.wait_s("10.0.0.7", "olga") == 0.0 and throttle.failures("olga") == 0
    for _ in range(FREE_FAILURES + 2):
        throttle.failed("10.0.0.8", "erik")
    clock.now += FORGET_S + 1
    assert throttle.wait_s("10.0.0.8", "erik") == 0.0
    throttle.failed("10.0.0.8", "erik")
    assert throttle.wait_s("10.0.0.8", "erik") == 0.0  # counted from one again
