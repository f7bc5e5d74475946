#!/usr/bin/env bash
# Install what the viewer and its test suite need on a fresh Debian/Ubuntu machine:
# system packages (only those missing) and a virtual environment with the project.
# Usage: scripts/bootstrap.sh [test|run]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"

# Debian packages: the test PACS (Orthanc + DICOMweb plugin behind nginx TLS),
# a virtual display for GUI tests, and what the screenshots are checked with.
pkgs_test=(orthanc orthanc-dicomweb nginx-light openssl curl xvfb xauth xdotool imagemagick)
pkgs_run=(libgl1 libegl1)
if [[ "$mode" == "test" ]]; then pkgs=("${pkgs_test[@]}" "${pkgs_run[@]}"); else pkgs=("${pkgs_run[@]}"); fi

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
if [[ "$mode" == "test" ]]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
