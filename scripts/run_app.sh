#!/usr/bin/env bash
# Installs what the app needs (once) and starts it on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
exec .venv/bin/streamlit run Home.py "$@"
