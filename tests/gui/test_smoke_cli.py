"""``zhiva-viewer --smoke PNG`` in a subprocess on the session's Xvfb: the real app
opens the demo study, scrolls to a slice and writes a screenshot whose pixels are read
back here (the phantom's slice code and its body), independently of the app's own check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.smoke import check_smoke_png
from viewer.cli import SMOKE_SLICE
from viewer.demo import DEMO_SLICES


def test_smoke_opens_the_demo_and_writes_a_screenshot_of_the_chosen_slice(
    xdisplay: str, tmp_path: Path
) -> None:
    png = tmp_path / "smoke.png"
    done = subprocess.run(
        [sys.executable, "-m", "viewer", "--smoke", str(png)],
        env={**os.environ, "DISPLAY": xdisplay},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    code = check_smoke_png(png, done.stdout)
    # The demo stack is shown head first: layout position k is instance N - k.
    assert code == DEMO_SLICES - 1 - SMOKE_SLICE
