#!/usr/bin/env bash
# Installs what the browser tests need, only when missing: Debian's Chromium and @tensorflow/tfjs from npm.
# Idempotent: a second run does nothing. Playwright's own browser download cannot work here, so we use /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  echo "[homl-edge] installing Debian's chromium (apt-get)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
stamp=web/node_modules/.homl-edge-lock
if [ ! -f web/node_modules/@tensorflow/tfjs/dist/tf.min.js ] || ! cmp -s web/package-lock.json "$stamp"; then
  echo "[homl-edge] installing @tensorflow/tfjs from npm (npm ci in web/)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  cp web/package-lock.json "$stamp"
fi
