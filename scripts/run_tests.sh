#!/usr/bin/env bash
# Installs what the tests need (once: packages, Debian's Chromium) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
# The browser tests drive Debian's Chromium; the fonts make Chinese text and emoji visible in screenshots.
browser_packages="chromium fonts-noto-cjk fonts-noto-color-emoji"
if ! dpkg -s $browser_packages >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -qq && DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq $browser_packages >/dev/null
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure here." >&2
  exit 1
fi
exit "$status"
