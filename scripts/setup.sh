#!/usr/bin/env bash
# Set CktLoop up on Debian/Ubuntu with Python 3.11: ngspice and its shared library, a virtual
# environment at .venv, the CPU build of torch first (a loose torch pulls a multi-GB CUDA build),
# then the package itself, every package at the version in constraints.txt (the versions the tests
# passed with). Safe to run again: it reinstalls only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in ngspice libngspice0 libngspice0-dev chromium chromium-driver; do  # chromium: the serve page's browser test
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "setup: CktLoop needs Python 3.11; found $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
    exit 1
}
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=("python3.11-venv")
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.cktloop-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log=.venv/pip-install.log
    echo "setup: installing Python packages into .venv (a few minutes the first time; log in $log)"
    { .venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/pip install -c constraints.txt torch; } >"$log" 2>&1 \
        && .venv/bin/pip install -c constraints.txt -e '.[dev]' >>"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; echo "setup: pip failed; see $log" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/python --version), $(ngspice --version 2>/dev/null | grep -o 'ngspice-[0-9]*' | head -1))"
