# Realm of Training. Two commands for a new user: `make play` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8888
# CPU machines take the CPU build of torch first (pyproject's range would otherwise pull
# a multi-GB CUDA build). Override on other machines, e.g. TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0

.PHONY: play test test-fast bench soak lint gpu-extras dio-mini clean-realm

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(PY) -m pip install -q "torch>=2.5,<2.15"; \
	else \
		$(PY) -m pip install -q "$(TORCH_SPEC)"; \
	fi
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

dio-mini: $(STAMP)
	$(VENV)/bin/realm build-dio-mini

## Start the game: JupyterLab (Tavern notebook), the daemon and the CPU demo hero.
play: $(STAMP)
	$(VENV)/bin/realm play --port $(PORT)

## The whole suite (unit, real daemon, real JupyterLab/Panel, Chromium via Playwright).
test: $(STAMP)
	$(PY) -m pytest -ra

## Unit tests only (seconds).
test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not slow"

bench: $(STAMP)
	$(PY) bench/train_cpu.py
	$(PY) bench/skills_bench.py
	$(PY) bench/ledger.py
	$(PY) bench/quest_latency.py
	$(PY) bench/ui_latency.py

## The reliability soak: 50 kill -9 faults, hostile inputs, readers under load (15-25 min).
soak: $(STAMP)
	$(PY) bench/soak.py --faults 50 --seconds 60

## ruff, and the layering check: imports only go down the layers, no circle (docs/architecture.md).
lint: $(STAMP)
	$(VENV)/bin/ruff check realm_kernel widgets skills tests bench
	$(PY) tests/test_layers.py

## Only on a CUDA machine: flash-attn, Liger kernels, bitsandbytes.
gpu-extras: $(STAMP)
	$(PY) -m pip install -e '.[dev,gpu]'

## Remove run-time state from the checkout (ledger, queue, checkpoints, models).
clean-realm:
	rm -rf ledger ledger.duckdb ledger.duckdb.wal inbox queue control status checkpoints models logs daemon.lock
