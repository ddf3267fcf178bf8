"""Which TensorRT / pycuda packages this GPU machine needs, chosen from its driver (``make gpu-check``).

The bare ``tensorrt`` package resolves to the newest major (11.x) and installs its CUDA 13 variant, which a
driver for CUDA 12 cannot run; so the variant is pinned from the driver's CUDA version (``nvidia-smi``
prints the newest CUDA the driver supports). Jetson (JetPack) ships TensorRT as Debian packages for its
system Python only: there the venv must see the system site-packages, and pip installs no TensorRT.
pycuda builds from source and needs the CUDA headers: ``CUDA_INC_DIR`` and ``nvcc`` on ``PATH`` (JetPack does
not put ``/usr/local/cuda/bin`` there).

    python -m export.gpu_install            # print the plan
    python -m export.gpu_install --requirements   # the pip requirement specifiers only
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

#: The oldest Python the station code runs on (pyproject ``requires-python``): JetPack 6's system 3.10.
MIN_PYTHON = (3, 10)
CUDA_HOME = "/usr/local/cuda"
PYCUDA = "pycuda>=2024.1"


class UnsupportedMachineError(RuntimeError):
    """The driver or Python of this machine cannot run the TensorRT path; the message says why."""


@dataclass(frozen=True)
class InstallPlan:
    """What ``make gpu-check`` installs and how.

    Attributes:
        requirements: pip requirement specifiers.
        system_site_packages: The venv must see the system's TensorRT bindings (Jetson).
        env: Environment the pycuda build needs.
        reason: Why this variant, in one line.

    """

    requirements: tuple[str, ...]
    system_site_packages: bool
    env: dict[str, str]
    reason: str

    def describe(self) -> str:
        """The plan as printed before anything is installed."""
        lines = [f"gpu-check plan: {self.reason}", f"  pip install {' '.join(self.requirements)}"]
        if self.system_site_packages:
            lines.append("  venv: --system-site-packages (TensorRT from the JetPack Debian packages)")
        lines += [f"  {key}={value}" for key, value in sorted(self.env.items())]
        return "\n".join(lines)


def driver_cuda_version(nvidia_smi_output: str) -> Version | None:
    """The newest CUDA version the driver supports, from ``nvidia-smi``'s header (None when absent)."""
    match = re.search(r"CUDA Version:\s*(\d+\.\d+)", nvidia_smi_output)
    return Version(match.group(1)) if match else None


def install_plan(
    driver_cuda: Version | None, jetson: bool, python: tuple[int, int], cuda_home: str = CUDA_HOME
) -> InstallPlan:
    """Choose the TensorRT package for a machine.

    Raises:
        UnsupportedMachineError: Python too old, no driver, or a driver older than CUDA 12.

    """
    if python < MIN_PYTHON:
        raise UnsupportedMachineError(
            f"Python {python[0]}.{python[1]}: the station needs {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ "
            "(JetPack 6 ships 3.10, JetPack 7 3.12: see docs/export.md)"
        )
    env = {"CUDA_INC_DIR": f"{cuda_home}/include", "PATH_PREFIX": f"{cuda_home}/bin"}
    if jetson:
        return InstallPlan((PYCUDA,), True, env, "Jetson: TensorRT from JetPack, pycuda built against it")
    if driver_cuda is None:
        raise UnsupportedMachineError("no NVIDIA driver found (nvidia-smi printed no CUDA version)")
    if driver_cuda.major >= 13:
        variant = "tensorrt-cu13"
    elif driver_cuda.major == 12:
        variant = "tensorrt-cu12"
    else:
        raise UnsupportedMachineError(
            f"driver supports CUDA {driver_cuda}; TensorRT 10/11 wheels need a driver for CUDA 12 or 13"
        )
    # <12: the code is checked against the 10.x and 11.x APIs only.
    return InstallPlan(
        (f"{variant}>=10.0,<12", PYCUDA), False, env, f"driver supports CUDA {driver_cuda}: {variant}"
    )


def detect() -> InstallPlan:
    """The plan for this machine."""
    jetson = Path("/etc/nv_tegra_release").exists()
    output = ""
    if shutil.which("nvidia-smi"):
        output = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False).stdout
    return install_plan(driver_cuda_version(output), jetson, (sys.version_info.major, sys.version_info.minor))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the plan (or only the requirements); exit 3 on a machine the TensorRT path does not support."""
    parser = argparse.ArgumentParser(prog="gpu-install", description=__doc__)
    parser.add_argument("--requirements", action="store_true", help="print only the pip requirements")
    args = parser.parse_args(argv)
    try:
        plan = detect()
    except UnsupportedMachineError as exc:
        print(f"gpu-check: {exc}", file=sys.stderr)
        return 3
    print(" ".join(plan.requirements) if args.requirements else plan.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
