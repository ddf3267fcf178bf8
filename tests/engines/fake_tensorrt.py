"""Pytest plugin (listed in tests/conftest.py): fake ``tensorrt`` and ``pycuda.driver`` modules for CPU tests.

``fake_gpu`` puts both fakes in ``sys.modules`` for one test, so the real builder and runner code runs on a
machine without a GPU. They follow the slice of the TensorRT 10/11 Python API the code uses (``typings/``),
with the behaviour the tests need to see:

* the builder records each build (source ONNX, optimisation profile) and serializes a small JSON "engine"
  with a random nonce: like TensorRT, two builds of one model are not byte-identical;
* an engine has the inputs the profile named (``-1`` where min and max differ; an input whose min equals its
  max is static and has no profile entry to ask for) and one output per input, ``<input>_plus_one``;
* device memory is a dict of byte arrays; an execution context reads its inputs from it at the addresses it
  was given and writes ``input + 1``, and records when two threads use it at once (``FakeGpu.overlaps``);
* a call whose first input element is :data:`HANG` blocks until ``FakeGpu.release`` is set (a hung GPU call);
* ``create_timing_cache`` returns None for bytes that are not a fake cache, and ``set_timing_cache(None)``
  raises TypeError, as pybind does for a null reference.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

HANG = 77.0
_CACHE_MAGIC = b"FAKECACHE"


@dataclass
class FakeGpu:
    """What the fakes saw."""

    loggers: int = 0
    builds: list[dict[str, object]] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    memory: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    executions: int = 0
    profile_queries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def engine_bytes(inputs: Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]) -> bytes:
    """A serialized fake engine with these inputs' (min, opt, max) shapes (all float32)."""
    spec = {name: [list(lo), list(opt), list(hi)] for name, (lo, opt, hi) in inputs.items()}
    return json.dumps({"inputs": spec, "nonce": int(np.random.default_rng().integers(1 << 62))}).encode()


class _DataType(IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5


class _TensorIOMode(IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


def _install(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    gpu = FakeGpu()
    addresses = itertools.count(4096, 4096)
    handles = itertools.count(1)
    depth = threading.local()

    # ------------------------------------------------------------------ pycuda.driver
    class CudaError(Exception):
        pass

    class Context:
        def push(self) -> None:
            depth.n = getattr(depth, "n", 0) + 1

        @staticmethod
        def pop() -> None:
            assert getattr(depth, "n", 0) > 0, "Context.pop without push on this thread"
            depth.n -= 1

    class Device:
        def __init__(self, number: int) -> None:
            self.number = number

        @staticmethod
        def count() -> int:
            return 1

        def name(self) -> str:
            return "Fake GPU"

        def compute_capability(self) -> tuple[int, int]:
            return (8, 7)

        def retain_primary_context(self) -> Context:
            return Context()

    class Stream:
        def __init__(self, flags: int = 0) -> None:
            self.handle = next(handles)

        def synchronize(self) -> None:
            pass

    class DeviceAllocation:
        def __init__(self, address: int) -> None:
            self.address = address

        def __int__(self) -> int:
            return self.address

    def mem_alloc(nbytes: int) -> DeviceAllocation:
        address = next(addresses)
        gpu.memory[address] = np.zeros(nbytes, np.uint8)
        return DeviceAllocation(address)

    def pagelocked_empty(shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        return np.empty(shape, dtype)

    def memcpy_htod_async(dest: DeviceAllocation, src: npt.NDArray[Any], stream: Stream) -> None:
        data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        gpu.memory[int(dest)][: data.size] = data

    def memcpy_dtoh_async(dest: npt.NDArray[Any], src: DeviceAllocation, stream: Stream) -> None:
        raw = gpu.memory[int(src)][: dest.nbytes].tobytes()
        np.copyto(dest, np.frombuffer(raw, dest.dtype).reshape(dest.shape))

    driver = types.ModuleType("pycuda.driver")
    for name, value in {
        "Error": CudaError,
        "Context": Context,
        "Device": Device,
        "Stream": Stream,
        "DeviceAllocation": DeviceAllocation,
        "init": lambda flags=0: None,
        "get_driver_version": lambda: 12060,
        "mem_alloc": mem_alloc,
        "pagelocked_empty": pagelocked_empty,
        "memcpy_htod_async": memcpy_htod_async,
        "memcpy_dtoh_async": memcpy_dtoh_async,
    }.items():
        setattr(driver, name, value)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ tensorrt
    class Logger:
        WARNING = 2

        def __init__(self, min_severity: int = 2) -> None:
            gpu.loggers += 1

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return _CACHE_MAGIC + b"|" + self.data[len(_CACHE_MAGIC) :] + b"+"

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, list[list[int]]] = {}

        def set_shape(self, name: str, lo: Sequence[int], opt: Sequence[int], hi: Sequence[int]) -> None:
            self.shapes[name] = [list(lo), list(opt), list(hi)]

    class BuilderConfig:
        def __init__(self) -> None:
            self.profiles: list[Profile] = []
            self.cache: TimingCache | None = None

        def set_memory_pool_limit(self, pool: int, size: int) -> None:
            pass

        def add_optimization_profile(self, profile: Profile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache | None:
            data = bytes(data)
            return TimingCache(data) if not data or data.startswith(_CACHE_MAGIC) else None

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            if cache is None:
                raise TypeError("set_timing_cache(): incompatible function arguments")
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            assert self.cache is not None
            return self.cache

    class Network:
        source = ""

    class OnnxParser:
        num_errors = 0

        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network

        def parse_from_file(self, path: str) -> bool:
            self.network.source = path
            return True

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            return Network()

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes:
            (profile,) = config.profiles
            gpu.builds.append({"source": Path(network.source).name, "profile": profile.shapes})
            shapes = {name: (s[0], s[1], s[2]) for name, s in profile.shapes.items()}
            return engine_bytes(shapes)

    class ExecutionContext:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, list[int]] = {
                name: hi if engine.static(name) else [] for name, (_, _, hi) in engine.inputs.items()
            }
            self.addresses: dict[str, int] = {}
            self.busy = threading.Lock()

        def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
            assert not self.engine.static(name), f"set_input_shape on static input '{name}'"
            lo, _, hi = self.engine.inputs[name]
            if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
                return False
            self.shapes[name] = list(shape)
            return True

        def get_tensor_shape(self, name: str) -> list[int]:
            return self.shapes[name.removesuffix("_plus_one")]

        def set_tensor_address(self, name: str, address: int) -> bool:
            self.addresses[name] = address
            return True

        def execute_async_v3(self, stream: int) -> bool:
            if not self.busy.acquire(blocking=False):
                gpu.overlaps.append(threading.current_thread().name)
                self.busy.acquire()
            try:
                with gpu.lock:
                    gpu.executions += 1
                for name in self.engine.inputs:
                    shape = self.shapes[name]
                    count = int(np.prod(shape))
                    raw = gpu.memory[self.addresses[name]][: count * 4].tobytes()
                    value = np.frombuffer(raw, np.float32).reshape(shape)
                    if value.size and value.flat[0] == HANG:
                        gpu.release.wait(10)
                    time.sleep(0.002)  # a kernel takes time: overlapping callers would show here
                    out = np.ascontiguousarray(value + 1, np.float32).view(np.uint8).reshape(-1)
                    gpu.memory[self.addresses[f"{name}_plus_one"]][: out.size] = out
            finally:
                self.busy.release()
            return True

    class Engine:
        def __init__(self, spec: dict[str, list[list[int]]]) -> None:
            self.inputs = {name: (s[0], s[1], s[2]) for name, s in spec.items()}
            self.names = [*self.inputs, *(f"{n}_plus_one" for n in self.inputs)]

        def static(self, name: str) -> bool:
            lo, _, hi = self.inputs[name]
            return lo == hi

        @property
        def num_io_tensors(self) -> int:
            return len(self.names)

        def get_tensor_name(self, index: int) -> str:
            return self.names[index]

        def get_tensor_mode(self, name: str) -> _TensorIOMode:
            return _TensorIOMode.INPUT if name in self.inputs else _TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> _DataType:
            return _DataType.FLOAT

        def get_tensor_shape(self, name: str) -> list[int]:
            lo, _, hi = self.inputs[name.removesuffix("_plus_one")]
            return [a if a == b else -1 for a, b in zip(lo, hi, strict=True)]

        def get_tensor_profile_shape(self, name: str, index: int) -> list[list[int]]:
            gpu.profile_queries.append(name)
            if self.static(name):
                raise RuntimeError(f"'{name}' has no dynamic dimension and no profile entry")
            return list(self.inputs[name])

        def create_execution_context(self) -> ExecutionContext:
            return ExecutionContext(self)

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            try:
                return Engine(json.loads(bytes(data))["inputs"])
            except ValueError:
                return None

    trt = types.ModuleType("tensorrt")
    for name, value in {
        "__version__": "10.3.0.30",
        "Logger": Logger,
        "Builder": Builder,
        "OnnxParser": OnnxParser,
        "Runtime": Runtime,
        "DataType": _DataType,
        "TensorIOMode": _TensorIOMode,
        "nptype": lambda dt: {_DataType.FLOAT: np.float32, _DataType.UINT8: np.uint8}[dt],
        "MemoryPoolType": types.SimpleNamespace(WORKSPACE=0),
        "NetworkDefinitionCreationFlag": types.SimpleNamespace(STRONGLY_TYPED=1),
    }.items():
        setattr(trt, name, value)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    # The process-wide logger belongs to the (fake) module of this test.
    monkeypatch.setattr("edge.engines.tensorrt_runner._logger", None)
    return gpu


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGpu]:
    """Fake ``tensorrt`` + ``pycuda.driver`` in ``sys.modules`` for one test."""
    gpu = _install(monkeypatch)
    yield gpu
    gpu.release.set()  # never leave a fake "hung" call waiting
