"""The app's models stay importable, and testable, without dearpygui or a display."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module",
    [
        "viewer.app.state",
        "viewer.app.servers_state",
        "viewer.app.ui_thread",
        "viewer.app.display",
        "viewer.app.cache_state",
        "viewer.app.model",
    ],
)
def test_models_do_not_import_dearpygui(module: str) -> None:
    code = f"import sys, {module}; print('dearpygui' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_window_opens_before_the_network_layer_is_imported() -> None:
    # The first frame must not wait for net (pydicom, httpx): main imports it lazily.
    code = "import sys, viewer.app.main; print('net' in sys.modules, 'pydicom' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False False"


def test_the_bundled_font_and_its_licence_are_there() -> None:
    from viewer.app.fonts import find_font

    font = find_font()
    assert font is not None and font.name == "DejaVuSans.ttf"
    assert font.stat().st_size < 1_000_000
    assert "Bitstream" in (font.parent / "LICENSE-DejaVu.txt").read_text()
