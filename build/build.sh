#!/usr/bin/env bash
# Build the Zhiva Viewer binaries with PyInstaller (build/zhiva-viewer.spec):
#   dist/zhiva-viewer          one file (unpacks itself into a temp dir at each start)
#   dist/zhiva-viewer-dir/     one folder (dist/zhiva-viewer-dir/zhiva-viewer)
# PyInstaller's work dir is dist/pyinstaller-work: nothing is written under build/.
# Usage: build/build.sh [onefile|onedir|both]   (default both; `make binary`)
# ZHIVA_WITH_GDCM=0 leaves python-gdcm (a fallback decoder) out: -6 MB one file.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-both}"
case "$what" in onefile|onedir|both) ;; *) echo "usage: $0 [onefile|onedir|both]" >&2; exit 2;; esac
py=.venv/bin/python
# A clean checkout has no .venv: make it as `make run` and `make test` do.
if ! { [[ -x "$py" ]] && "$py" -c "import PyInstaller" 2>/dev/null; }; then
  scripts/bootstrap.sh build
fi
ZHIVA_BUILD="$what" "$py" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath dist/pyinstaller-work build/zhiva-viewer.spec
[[ "$what" == onedir ]] || ls -l dist/zhiva-viewer
[[ "$what" == onefile ]] || du -sh dist/zhiva-viewer-dir
