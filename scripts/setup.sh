#!/usr/bin/env bash
# Create (or update) the project's virtualenv in .venv from requirements.lock.
# Idempotent: re-running only installs what changed in the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.8

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"framing-pipeline needs Python 3.11+, found {sys.version.split()[0]}")
PY

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -m uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
    echo "==> installing uv $UV_VERSION (fast, lock-exact installs)"
    .venv/bin/python -m pip install --quiet "uv==$UV_VERSION"
fi
stamp=.venv/.lock-sha256
want=$(sha256sum requirements.lock pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> syncing .venv with requirements.lock"
    # Compiled bytecode at install: with PYTHONDONTWRITEBYTECODE set (as on CI images) every
    # process would otherwise compile scikit-learn, SciPy, MLflow and BentoML from source again
    # (`import sklearn.base` 5.7 s instead of 2.5 s; bench/RESULTS.md).
    .venv/bin/python -m uv pip sync --compile-bytecode --python .venv/bin/python requirements.lock
    .venv/bin/python -m uv pip install --compile-bytecode --python .venv/bin/python --no-deps -e .
    echo "$want" > "$stamp"
fi
# The project's own modules too (cheap; stale files are recompiled by Python itself).
.venv/bin/python -m compileall -q pipeline serving
echo "==> .venv ready ($(.venv/bin/python --version))"
