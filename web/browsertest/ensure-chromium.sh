#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (web/browsertest) unless
# it is already there. Meant for .ci/run and fresh machines: with CI=true
# the browser tests fail instead of skipping when Chromium is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
chromium --version
