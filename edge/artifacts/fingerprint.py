"""What a TensorRT engine is bound to: TensorRT version, CUDA driver version, GPU compute capability.

A serialized engine only runs on the TensorRT version that built it and is tuned for one GPU architecture;
a firmware update that changes any of the three must trigger a rebuild. Engines live in a directory named
by :meth:`DeviceFingerprint.key`, so a stale engine is never even looked at, and the ``post-update`` firmware
hook (``edge export engines --if-stale``) compares keys to decide whether to rebuild.

``tensorrt`` and ``pycuda`` are the optional ``gpu`` extra: imported here lazily, and their absence is an
answer (:class:`GpuUnavailableError` with the reason), not a crash.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass

from packaging.version import Version

MIN_TENSORRT = Version("10.0")


class GpuUnavailableError(RuntimeError):
    """No usable NVIDIA GPU + TensorRT on this machine; the message says which part is missing."""


@dataclass(frozen=True)
class DeviceFingerprint:
    """Identity of the (TensorRT, CUDA, GPU) combination an engine is built for.

    Attributes:
        tensorrt: Full TensorRT version, e.g. ``10.3.0.30``.
        cuda_driver: CUDA version the driver supports, ``major.minor`` (e.g. ``12.6``).
        compute_capability: GPU architecture, ``major.minor`` (e.g. ``8.7`` for Jetson Orin).
        gpu_name: Marketing name (informative only, not part of the key).

    """

    tensorrt: str
    cuda_driver: str
    compute_capability: str
    gpu_name: str = ""

    def key(self) -> str:
        """Directory-safe key, e.g. ``trt10.3.0.30-cuda12.6-sm87``."""
        return f"trt{self.tensorrt}-cuda{self.cuda_driver}-sm{self.compute_capability.replace('.', '')}"

    def to_json(self) -> str:
        """JSON form (for the hook's log and the engine build record)."""
        return json.dumps({**asdict(self), "key": self.key()}, sort_keys=True)


def tensorrt_version() -> Version:
    """Installed TensorRT version; raises :class:`GpuUnavailableError` when TensorRT is missing or too old."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise GpuUnavailableError(
            f"TensorRT is not installed ({exc}); install the 'gpu' extra on GPU stations"
        ) from exc
    version = Version(trt.__version__)
    if version < MIN_TENSORRT:
        raise GpuUnavailableError(f"TensorRT {version} is older than the supported {MIN_TENSORRT}")
    return version


def cuda_driver_version_string(raw: int) -> str:
    """CUDA driver API version integer (e.g. 12060) as ``major.minor`` (``12.6``)."""
    return f"{raw // 1000}.{(raw % 1000) // 10}"


def device_fingerprint(device: int = 0) -> DeviceFingerprint:
    """Fingerprint of GPU ``device`` with the installed TensorRT.

    Raises:
        GpuUnavailableError: TensorRT or pycuda missing, no NVIDIA driver, or no such device.

    """
    trt_version = tensorrt_version()
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise GpuUnavailableError(f"pycuda is not installed ({exc}); install the 'gpu' extra") from exc
    try:
        cuda.init()
        count = cuda.Device.count()
        if device >= count:
            raise GpuUnavailableError(f"GPU {device} requested, {count} CUDA device(s) present")
        gpu = cuda.Device(device)
        major, minor = gpu.compute_capability()
        return DeviceFingerprint(
            tensorrt=str(trt_version),
            cuda_driver=cuda_driver_version_string(cuda.get_driver_version()),
            compute_capability=f"{major}.{minor}",
            gpu_name=gpu.name(),
        )
    except cuda.Error as exc:
        raise GpuUnavailableError(f"CUDA driver unusable: {exc}") from exc


def gpu_unavailable_reason() -> str | None:
    """Why this machine cannot run TensorRT engines, or None when it can (cheap checks first)."""
    if shutil.which("nvidia-smi") is None and not _is_jetson():
        return "no NVIDIA driver (nvidia-smi not found)"
    try:
        device_fingerprint()
    except GpuUnavailableError as exc:
        return str(exc)
    return None


def _is_jetson() -> bool:
    # Jetson (L4T) has no nvidia-smi on older releases; its release file identifies it.
    from pathlib import Path

    return Path("/etc/nv_tegra_release").exists()
