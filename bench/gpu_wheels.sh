#!/usr/bin/env bash
# Fetch the wheels the device machine lacks into .whl/ (git-ignored), for bench/gpu_train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
py=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
    --platform manylinux1_x86_64 --platform any)
for pkg in duckdb pydantic pydantic-core annotated-types typing-inspection liger-kernel bitsandbytes \
           watchfiles; do
  python3 -m pip download -q --no-deps "${py[@]}" -d .whl "$pkg"
done
ls -la .whl
