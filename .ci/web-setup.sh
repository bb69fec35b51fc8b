#!/usr/bin/env bash
# Studio prerequisites for CI: Debian's Chromium (the browser tests drive it with
# Playwright; Playwright's own browser download cannot work here) and the [web] extra.
# Idempotent and quiet; safe to call on every CI run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq chromium >/dev/null
fi

python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e ".[dev]"
