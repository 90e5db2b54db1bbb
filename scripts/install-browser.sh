#!/usr/bin/env bash
# Install Chromium from Debian's packages when the machine lacks it: the browser tests
# (tests/e2e/test_s3_cors_browser.py, tests/e2e/test_console_browser.py) drive it
# headless with Playwright's Python package, through its executable, to check CORS as a
# browser enforces it and the web console as a person uses it. Safe to run
# again: an installed Chromium is left alone.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "install-browser: $(chromium --version 2>/dev/null || echo chromium) is installed"
  exit 0
fi
echo "install-browser: installing chromium from Debian's packages"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "install-browser: $(chromium --version 2>/dev/null || echo chromium) installed"
