"""The packaged binary itself (ZHIVA_BINARY): version, self-check, smoke under xvfb-run.

These are what proves the frozen app finds what PyInstaller cannot see by itself: the
pixel decoder plugins (decoded, not only listed), the fonts and presets, the demo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.smoke import check_smoke_png
from viewer.cli import SELF_CHECK_SYNTAXES, SMOKE_SLICE
from viewer.demo import DEMO_SLICES

XVFB_ARGS = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24"]


def _run(
    args: list[str], *, display: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def test_version_says_packaged(binary: Path) -> None:
    done = _run([str(binary), "--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("zhiva-viewer ") and "(packaged)" in done.stdout


def test_self_check_passes_and_decodes_every_lossless_family(binary: Path) -> None:
    done = _run([str(binary), "--self-check"])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for label, ts in SELF_CHECK_SYNTAXES:
        assert any(line.startswith(f"[pass] decoder {label} ({ts}):") for line in lines), label
    for family in ("JPEG 2000", "JPEG-LS", "JPEG lossless", "RLE"):
        assert f"[pass] test decode {family}: a 12-bit frame came back bit-exact" in lines
    # gdcm is bundled (the only decoder of colour JPEG lossless here).
    assert any(
        line.startswith("[pass] decoder JPEG lossless (") and "gdcm" in line for line in lines
    )
    assets = [line for line in lines if line.startswith("[pass] assets ")]
    assert assets and str(binary.parent) in assets[0]  # the bundle's own, not the tree's
    assert lines[-1] == "self-check: all checks passed."


def test_smoke_under_xvfb_run_shows_the_demo_slice(binary: Path, tmp_path: Path) -> None:
    if shutil.which("xvfb-run") is None:
        pytest.fail("xvfb-run is not installed (Debian package xvfb)")
    png = tmp_path / "smoke.png"
    done = _run([*XVFB_ARGS, str(binary), "--smoke", str(png)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert check_smoke_png(png, done.stdout) == DEMO_SLICES - 1 - SMOKE_SLICE


def test_smoke_without_a_display_exits_2(binary: Path, tmp_path: Path) -> None:
    done = _run([str(binary), "--smoke", str(tmp_path / "smoke.png")])
    assert done.returncode == 2
    assert "no X display" in done.stderr


def test_the_one_folder_build_carries_the_licences(binary: Path) -> None:
    bundle = binary.parent / "_internal"
    if not bundle.is_dir():
        pytest.skip("a one-file binary: its contents unpack only when it runs")
    index = (bundle / "licenses" / "THIRD-PARTY-LICENSES.txt").read_text()
    for name in ("dearpygui", "pydicom", "numpy", "imagecodecs", "pyjpegls", "Python"):
        assert f"\n{name} " in index, name
    assert (bundle / "assets" / "fonts" / "LICENSE-DejaVu.txt").is_file()
    assert list((bundle / "licenses" / "imagecodecs").rglob("LICENSE-openjpeg*"))
    assert not (bundle / "pydicom" / "data" / "test_files").exists()
    assert not (bundle / "imagecodecs" / "_avif.abi3.so").exists()  # unused codecs stay out
