#!/usr/bin/env bash
# Installs the system tools the test suite needs, only those missing, from Debian's packages (sudo only when not
# root), then @tensorflow/tfjs from npm. Idempotent: a second run installs nothing and prints one line per tool.
#   chromium           the browser tests and chapter 06 (Playwright drives Debian's build: its own download cannot work here)
#   node, npm          @tensorflow/tfjs for the pages the browser tests serve
#   gcc, g++, binutils chapter 07 and the C-array tests compile the model array (objcopy/nm come with binutils)
#   python3-venv       make install creates .venv
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
declare -A PKG=([chromium]=chromium [node]=nodejs [npm]=npm [gcc]=gcc [g++]=g++ [objcopy]=binutils)
missing=()
for tool in chromium node npm gcc g++ objcopy; do
  if command -v "$tool" >/dev/null 2>&1; then
    echo "[homl-edge] $tool: $(command -v "$tool")"
  else
    echo "[homl-edge] $tool: missing, will install Debian's ${PKG[$tool]}"
    missing+=("${PKG[$tool]}")
  fi
done
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  echo "[homl-edge] python3 venv: missing, will install python3-venv"
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "[homl-edge] error: cannot install ${missing[*]}: no apt-get here; install them with your package manager" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "[homl-edge] installed: ${missing[*]}"
fi
for tool in chromium node npm gcc g++ objcopy; do
  command -v "$tool" >/dev/null 2>&1 || { echo "[homl-edge] error: $tool is still missing after the install" >&2; exit 1; }
done
stamp=web/node_modules/.homl-edge-lock
if [ ! -f web/node_modules/@tensorflow/tfjs/dist/tf.min.js ] || ! cmp -s web/package-lock.json "$stamp"; then
  echo "[homl-edge] installing @tensorflow/tfjs from npm (npm ci in web/)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  cp web/package-lock.json "$stamp"
fi
