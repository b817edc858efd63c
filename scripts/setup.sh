#!/usr/bin/env bash
# Create .venv in the repository root and install hybridrad with everything it needs.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [extras]   (default: all,dev)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-all,dev}"
PY="${PYTHON:-python3}"
STAMP=".venv/.hybridrad-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${EXTRAS//,/_}"
if [ -f "$STAMP" ]; then exit 0; fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "hybridrad needs Python >= 3.10")'
  "$PY" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip
# 1. torch first, pinned to the CPU wheel, so nothing later pulls a multi-GB CUDA build.
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  $PIP install --quiet "torch==${HYBRIDRAD_TORCH:-2.13.0}"
fi
# 2. pyradiomics 3.0.1: its setup.py imports numpy, so build it without isolation
#    (3.1.0 on PyPI is a mislabelled sdist).
if ! .venv/bin/python -c 'import radiomics' 2>/dev/null; then
  $PIP install --quiet "numpy>=1.24" setuptools wheel versioneer
  $PIP install --quiet --no-build-isolation "pyradiomics==3.0.1"
fi
.venv/bin/python -c 'from radiomics import _cmatrices, _cshape' \
  || { echo "pyradiomics C extensions failed to import" >&2; exit 1; }
# 3. With the dev extras: Chromium (Debian package `chromium`) for the report's browser test.
#    Installed when missing and this user may install packages (root or password-less sudo);
#    otherwise the browser test is skipped and says why.
if [[ ",$EXTRAS," == *",dev,"* ]] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  APT=""
  if [ "$(id -u)" -eq 0 ]; then APT="apt-get"; elif sudo -n true 2>/dev/null; then APT="sudo apt-get"; fi
  if [ -n "$APT" ]; then
    DEBIAN_FRONTEND=noninteractive $APT install -y -q --no-install-recommends chromium >/dev/null \
      || { DEBIAN_FRONTEND=noninteractive $APT update -q >/dev/null \
           && DEBIAN_FRONTEND=noninteractive $APT install -y -q --no-install-recommends chromium >/dev/null; } \
      || echo "warning: could not install chromium; the report's browser test will be skipped" >&2
  else
    echo "note: chromium not installed (needs root or sudo); the report's browser test will be skipped" >&2
  fi
fi
# 4. hybridrad itself, editable, with extras.
$PIP install --quiet -e ".[${EXTRAS}]"
touch "$STAMP"
echo "hybridrad environment ready in .venv"
