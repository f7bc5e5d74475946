#!/usr/bin/env bash
# Install the viewer into .venv (first time only) and start it.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/zhiva-viewer ]] || scripts/bootstrap.sh run
exec .venv/bin/zhiva-viewer "$@"
