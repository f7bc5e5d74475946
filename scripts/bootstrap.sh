#!/usr/bin/env bash
# Install what the viewer and its test suite need on a fresh Debian/Ubuntu machine:
# system packages (only those missing) and a virtual environment with the project.
# Usage: scripts/bootstrap.sh [test|run|build]   (build: what build/build.sh needs)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"
case "$mode" in test|run|build) ;; *) echo "usage: $0 [test|run|build]" >&2; exit 2;; esac

# Debian packages: the test PACS (Orthanc + DICOMweb plugin behind nginx TLS),
# a virtual display for GUI tests, what the screenshots are checked with, and dciodvfy
# (dicom3tools, BSD-3-Clause) that validates the measurement reports we write.
pkgs_test=(orthanc orthanc-dicomweb nginx-light openssl curl xvfb xauth xdotool imagemagick dicom3tools)
pkgs_run=(libgl1 libegl1)
# PyInstaller reads the binaries it bundles with objdump.
pkgs_build=(binutils)
case "$mode" in
  test) pkgs=("${pkgs_test[@]}" "${pkgs_run[@]}" "${pkgs_build[@]}") ;;
  build) pkgs=("${pkgs_run[@]}" "${pkgs_build[@]}") ;;
  run) pkgs=("${pkgs_run[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing system packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d keeps the packages' own services (orthanc, nginx) from starting: the
  # test suite starts private instances on free ports instead.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [[ "$mode" == "test" || "$mode" == "build" ]]; then
  # PyInstaller is in the test extra: CI builds the binary it tests.
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
