#!/usr/bin/env bash
# The main job on a fresh machine (no GPU needed): install into a virtual environment, then run VL Norm
# through verl's own FSDP2 engine and ppo_loss on CPU and check every gradient against the paper's formula,
# and print the cost benchmark.
# Env: VENV (default .venv), PYTHON (default python3), TORCH_SPEC (default torch==2.13.0).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "== VL Norm on verl's FSDP2 engine (CPU, gloo): gradients vs a plain-PyTorch statement of the paper's formula"
"$VENV/bin/python" -m pytest -p no:cacheprovider -q -rA tests/integration/test_engine_vl_norm.py
echo "== Cost of VL Norm vs verl's baselines"
"$VENV/bin/python" bench/bench_core.py --repeats "${BENCH_REPEATS:-9}"
