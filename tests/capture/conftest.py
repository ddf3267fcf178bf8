"""Fixtures for capture tests.

Camera tests run the real harvesters path against the simulated producer ``viky.cti`` from the ``genicam``
wheel. As in harvesters' own tests, environment variables swap in another producer/camera:
``EDGE_TEST_CTI=/opt/vendor/lib/Vendor.cti EDGE_TEST_CAMERA_SERIAL=12345 pytest -m camera tests/capture``.
Tests that depend on viky's quirks (no trigger features, RGBa8 red ball on serial 0) skip on other cameras.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.capture import GenICamSettings, ReconnectPolicy, simulated_cti

ENV_CTI = "EDGE_TEST_CTI"
ENV_SERIAL = "EDGE_TEST_CAMERA_SERIAL"

CameraFactory = Callable[..., GenICamSettings]


def using_simulator() -> bool:
    """Whether camera tests run against viky (no override in the environment)."""
    return not os.environ.get(ENV_CTI)


@pytest.fixture
def camera_settings() -> CameraFactory:
    """Build settings for the test camera; keyword arguments override fields."""

    def make(**overrides: Any) -> GenICamSettings:
        cti_env = os.environ.get(ENV_CTI)
        kwargs: dict[str, Any] = {
            "cti": Path(cti_env) if cti_env else simulated_cti(),
            "serial": os.environ.get(ENV_SERIAL) or (None if cti_env else "0"),
            # Short backoff keeps reconnect tests fast; the behaviour under test is the same.
            "reconnect": ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2),
        }
        kwargs.update(overrides)
        return GenICamSettings(**kwargs)

    return make


@pytest.fixture
def viky_only() -> None:
    """Skip unless running against the simulator."""
    if not using_simulator():
        pytest.skip("depends on the simulated camera viky.cti")
