#!/usr/bin/env bash
# On a CUDA machine: the `gpu` tests (bf16 load, flash-attn varlen packing, Liger, paged
# 8-bit AdamW, fused AdamW, NVML) and the GPU-aware guards of the CPU tests, then the
# measured benchmark (peak memory against the VRAM estimate). Usage: bench/gpu_check.sh [PY]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device here")'
# The pytest step: every gpu test, and the CPU tests whose expectations follow the machine.
"$PY" -m pytest -p no:cacheprovider -ra -m gpu tests/
"$PY" -m pytest -p no:cacheprovider -ra tests/test_optim.py tests/test_taskmaster.py::test_gpu_awareness_follows_the_machine \
  tests/test_engine_features.py::test_unpacked_path_and_a_failing_self_check
# The measured check: peak memory vs the estimate (vram_estimate_error in bench/results).
"$PY" bench/gpu_train.py
