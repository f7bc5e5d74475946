#!/usr/bin/env bash
# Install everything the suite needs, then run the linters and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy (strict: net, render, viewer)"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
if [[ "${ZHIVA_SKIP_BINARY:-}" != 1 ]]; then
  # The packaged app: tests/packaging runs its --version, --self-check and --smoke
  # (under xvfb-run, pixels checked). ZHIVA_SKIP_BINARY=1 skips the build (and them).
  echo "== binary (PyInstaller, one folder)"
  build/build.sh onedir
  export ZHIVA_BINARY=dist/zhiva-viewer-dir/zhiva-viewer
fi
echo "== pytest"; exec .venv/bin/pytest "$@"
