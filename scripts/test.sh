#!/usr/bin/env bash
# Install the project into a virtual environment (created if missing) and run the test suite.
# Usage: bash scripts/test.sh [pytest args...]      (-h, --help: this text; pytest's own: .venv/bin/pytest --help)
# Env: VENV (default .venv), PYTHON (default python3), TORCH_SPEC (default torch==2.13.0, a CPU build here).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_help.sh
source scripts/_help.sh
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then   # this header, then exit
    print_help "$0"
    exit 0
fi
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
export PATH="$PWD/$VENV/bin:$PATH"
exec "$VENV/bin/python" -m pytest "$@"
