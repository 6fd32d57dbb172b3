#!/usr/bin/env bash
# The whole test suite, as CI runs it: sets up .venv from the lock file if needed,
# then runs every tier (code, data, model, slow end-to-end, integration and Spark local[2] tests).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -k ingest`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# Label Studio's server lives in its own virtualenv (it conflicts with the main one);
# the integration tests start it. Idempotent: stamped by its lock file.
python -m pipeline.labelstudio.cli install
exec python -m pytest -m "" "$@"
