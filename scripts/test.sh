#!/usr/bin/env bash
# The whole test suite, as CI runs it: sets up .venv from the lock file if needed,
# then runs every tier (code, data, model, slow end-to-end and integration tests).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -k ingest`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# Label Studio's server lives in its own virtualenv (it conflicts with the main one);
# the integration tests start it. Idempotent: stamped by its lock file.
python -m pipeline.labelstudio.cli install
# The report/monitor browser test opens the pages in Debian's Chromium (Playwright drives
# /usr/bin/chromium; it downloads no browser of its own). CI runs as root, so install it when missing.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "==> installing Debian's chromium for the browser test"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "scripts/test.sh: /usr/bin/chromium is missing; install it: sudo apt-get install chromium" >&2
        exit 1
    fi
fi
exec python -m pytest -m "" "$@"
