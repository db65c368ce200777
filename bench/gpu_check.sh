#!/usr/bin/env bash
# The one GPU check (issue 14, item 8): one command on a CUDA machine, under 8 minutes.
#   0. the wheels the device lacks: `bash bench/gpu_wheels.sh` fills .whl/ beforehand on a
#      machine with network; here they go into /tmp/realm-site (no network needed)
#   1. the gpu tests: bf16 load, flash-attn varlen packing equal to each example alone
#      (packed vs unpacked on the GPU), Liger, paged 8-bit AdamW, fused AdamW, NVML; and the
#      CPU tests whose expectations follow the machine; a battle's measured peak memory
#      (torch.cuda.max_memory_allocated, NVML) beside the VRAM calculator's estimate, printed
#      by tests/train/test_gpu.py::test_a_battle_records_its_peak_memory_beside_the_estimate
#   2. bench/gpu_train.py: Qwen3-0.6B tokens/s, MFU and peak vs plain HF Trainer on the same
#      data (packing + flash-attn or sdpa, Liger where installed), the 4B recipe's peak under a
#      24 GiB cap vs the VRAM calculator, QLoRA; for both, the peak the engine recorded for
#      its battle beside the estimate for that battle's settings (speed_battle_*,
#      memory_battle_* in bench/results/gpu_train.json)
#   3. the speed part again with Liger off
#   4. bench/oracle.py on Qwen3-0.6B: load, first token, streamed tokens/s vs plain generate
# Figures: bench/results/gpu_train*.json, oracle_qwen3_0_6b.json, lines in bench/RESULTS.md.
# It exits non-zero when an extra (flash-attn, liger-kernel, bitsandbytes, peft, pynvml) is
# missing or any gpu-marked test fails or is skipped (bench/gpu_results.py).
# Usage: bench/gpu_check.sh [PY]   (default .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device here")'
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/realm-site .whl/*.whl
  export PYTHONPATH="/tmp/realm-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
start=$(date +%s)
# Every extra the gpu tests use must be installed: a test that skips for a missing one
# proves nothing, so the check fails here, naming them.
"$PY" bench/gpu_results.py extras
# The gpu tests, then their junit report: any skipped (or none run) fails the check.
"$PY" -m pytest -p no:cacheprovider -ra -m gpu --junitxml=/tmp/realm-gpu-tests.xml tests/
"$PY" bench/gpu_results.py junit /tmp/realm-gpu-tests.xml
"$PY" -m pytest -p no:cacheprovider -q -s tests/train/test_gpu.py::test_a_battle_records_its_peak_memory_beside_the_estimate \
  | grep "measured on" || true
"$PY" -m pytest -p no:cacheprovider -ra tests/train/test_optim.py tests/services/test_taskmaster.py::test_gpu_awareness_follows_the_machine \
  tests/train/test_engine_features.py::test_unpacked_path_and_a_failing_self_check
"$PY" bench/gpu_train.py
"$PY" bench/gpu_train.py --part speed --liger off
"$PY" bench/oracle.py --from-config qwen3-0.6b --tokens 256
echo "gpu_check: $(( $(date +%s) - start )) s; figures in bench/results/ and bench/RESULTS.md"
