from __future__ import annotations

import pytest
from packaging.version import Version

from export.gpu_install import UnsupportedMachineError, driver_cuda_version, install_plan

SMI = "| NVIDIA-SMI 570.86.15   Driver Version: 570.86.15   CUDA Version: 12.8     |"


def test_the_cuda_variant_follows_the_driver_not_the_newest_wheel() -> None:
    assert driver_cuda_version(SMI) == Version("12.8") and driver_cuda_version("no driver") is None
    cu12 = install_plan(Version("12.8"), jetson=False, python=(3, 11))
    assert cu12.requirements[0] == "tensorrt-cu12>=10.0,<12" and not cu12.system_site_packages
    assert install_plan(Version("13.0"), False, (3, 12)).requirements[0] == "tensorrt-cu13>=10.0,<12"
    assert install_plan(Version("12.10"), False, (3, 12)).requirements[0].startswith("tensorrt-cu12")
    assert cu12.env["CUDA_INC_DIR"] == "/usr/local/cuda/include"  # pycuda builds from source
    assert "tensorrt-cu12" in cu12.describe()
    with pytest.raises(UnsupportedMachineError, match=r"CUDA 11\.4"):
        install_plan(Version("11.4"), False, (3, 11))
    with pytest.raises(UnsupportedMachineError, match="no NVIDIA driver"):
        install_plan(None, False, (3, 11))


def test_jetson_uses_the_system_tensorrt_on_jetpack_6_and_7_and_older_pythons_are_refused() -> None:
    for python in ((3, 12), (3, 10)):  # JetPack 7, JetPack 6
        jetson = install_plan(None, jetson=True, python=python)
        assert jetson.system_site_packages and not any(r.startswith("tensorrt") for r in jetson.requirements)
    with pytest.raises(UnsupportedMachineError, match=r"Python 3.9: the station needs 3.10\+"):
        install_plan(None, jetson=True, python=(3, 9))
