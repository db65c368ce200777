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

# PyPI's Linux `torch` is the CUDA build (~2.5 GB, runs on a CPU too); the 200 MB CPU build
# lives on its own index: TORCH_INDEX=https://download.pytorch.org/whl/cpu. Empty: pip's own
# configuration decides (the dev/CI machines' mirror serves the CPU build).
TORCH_INDEX ?=
# skip: `make test` skips the browser tests (and says so); anything else needs chromium.
BROWSER_TESTS ?=
# pytest-xdist workers for `make test`: most tests wait on subprocesses (daemon, JupyterLab,
# Chromium), so two workers halve the wall time on 2 cores. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
# pip's progress (downloads, what it collects) is shown: the first install takes minutes.
PIP := $(PY) -m pip install --progress-bar on

.PHONY: play test test-fast bench soak lint docs gpu-extras dio-mini clean-realm chromium-check

$(STAMP): pyproject.toml
	@echo "==> [1/4] creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/4] upgrading pip"
	$(PIP) -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "==> [3/4] installing torch with CUDA (nvidia-smi sees a GPU; ~2.5 GB)"; \
		$(PIP) "torch>=2.5,<2.15"; \
	else \
		echo "==> [3/4] installing torch for the CPU ($(TORCH_SPEC)$(if $(TORCH_INDEX), from $(TORCH_INDEX)))"; \
		$(PIP) "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple); \
	fi
	@echo "==> [4/4] installing Realm of Training and its dependencies (a few minutes)"
	$(PIP) -e '.[dev]'
	touch $(STAMP)
	@echo "==> ready: $(VENV)/bin/realm"

dio-mini: $(STAMP)
	$(VENV)/bin/realm build-dio-mini

## Start the game: JupyterLab (Tavern notebook), the daemon and the CPU demo hero.
play: $(STAMP)
	$(VENV)/bin/realm play --port $(PORT)

## The whole suite (unit, real daemon, real JupyterLab/Panel, Chromium via Playwright).
test: $(STAMP) chromium-check
	BROWSER_TESTS=$(BROWSER_TESTS) $(PY) -m pytest -ra --durations=12 -n $(TEST_WORKERS) --dist loadfile

## The browser tests never skip in silence: chromium is installed (apt, as root) or the
## command to run is named; BROWSER_TESTS=skip skips them on purpose.
chromium-check:
	@if [ "$(BROWSER_TESTS)" = skip ]; then \
		echo "==> BROWSER_TESTS=skip: the browser tests will be skipped"; \
	elif [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "==> /usr/bin/chromium is missing: apt-get install chromium"; \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		else \
			echo "error: the browser tests need /usr/bin/chromium. Install it with:"; \
			echo "    sudo apt-get install chromium"; \
			echo "or skip them on purpose: BROWSER_TESTS=skip make test"; \
			exit 1; \
		fi; \
	fi

## Unit tests only (seconds).
test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not slow"

bench: $(STAMP)
	$(PY) bench/train_cpu.py
	$(PY) bench/skills_bench.py
	$(PY) bench/ledger.py
	$(PY) bench/quest_latency.py
	$(PY) bench/ui_latency.py
	$(PY) bench/real_hero_cpu.py

## The reliability soak: 50 kill -9 faults, hostile inputs, readers under load (15-25 min).
soak: $(STAMP)
	$(PY) bench/soak.py --faults 50 --seconds 60

## ruff, the layering check (imports only go down the layers, no circle) and the homes check
## (every module in docs/architecture.md's table and with a test home); see docs/architecture.md.
lint: $(STAMP)
	$(VENV)/bin/ruff check realm_kernel widgets skills tests bench docs
	$(PY) tests/test_layers.py
	$(PY) tests/test_homes.py

## Rewrite the generated parts of docs/architecture.md (the module table, lines per layer).
docs: $(STAMP)
	$(PY) docs/architecture_gen.py

## Only on a CUDA machine: flash-attn, Liger kernels, bitsandbytes.
gpu-extras: $(STAMP)
	@echo "==> [1/2] Liger kernels and bitsandbytes (QLoRA, paged 8-bit AdamW)"
	$(PIP) -e '.[dev,gpu]'
	@echo "==> [2/2] flash-attn, built against the torch already installed (--no-build-isolation;"
	@echo "    without a prebuilt wheel for your torch/CUDA it compiles: nvcc, ninja, 10-30 min)"
	$(PIP) ninja packaging wheel
	$(PIP) flash-attn --no-build-isolation

## Remove run-time state from the checkout (ledger, queue, checkpoints, models).
clean-realm:
	rm -rf ledger ledger.duckdb ledger.duckdb.wal inbox queue control status checkpoints models logs daemon.lock
