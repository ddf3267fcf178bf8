"""Pytest plugin (listed in tests/conftest.py) for the export and engine tests.

* ``artifacts``: one exported, gated artifact set (FP32, INT8 in both Q/DQ flavours, FP16) at 128x128,
  made once per session (a few seconds); tests that tamper with files work on a :func:`copy_set` copy.
* The ``gpu`` marker: such tests skip, with the reason, where there is no usable GPU + TensorRT; with
  ``EDGE_REQUIRE_GPU=1`` (``make gpu-check``) they fail instead, so a GPU run cannot pass by skipping.

The export modules are imported lazily: this plugin loads for every test session of the repository.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edge.model.spec import ModelSpec

SPEC = ModelSpec(input_size=(128, 128))
_CACHE: dict[str, Path] = {}


def artifact_set(factory: pytest.TempPathFactory) -> Path:
    """Directory of the session's exported, gated artifact set (read-only by convention)."""
    if "set" not in _CACHE:
        from edge.artifacts.names import PRECISIONS
        from export.calibration import synthetic_calibration
        from export.pipeline import export_all

        directory = factory.mktemp("artifact-set")
        export_all(
            SPEC, directory, PRECISIONS, lambda: synthetic_calibration(SPEC.input_size), progress=False
        )
        _CACHE["set"] = directory
    return _CACHE["set"]


def copy_set(source: Path, destination: Path) -> Path:
    """Writable copy of an artifact set."""
    shutil.copytree(source, destination)
    return destination


def skip_without_gpu(item: pytest.Item) -> None:
    """Skip a ``gpu``-marked test, with the reason, on machines without a usable GPU + TensorRT."""
    if item.get_closest_marker("gpu") is None:
        return
    from edge.artifacts.fingerprint import gpu_unavailable_reason

    reason = gpu_unavailable_reason()
    if reason is not None:
        if os.environ.get("EDGE_REQUIRE_GPU") == "1":
            pytest.fail(f"EDGE_REQUIRE_GPU=1 but {reason}")
        pytest.skip(f"gpu test skipped: {reason}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply the ``gpu`` marker skip to every test."""
    skip_without_gpu(item)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's exported artifact set at 128x128."""
    return artifact_set(tmp_path_factory)
