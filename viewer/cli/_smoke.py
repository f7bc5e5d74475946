"""``zhiva-viewer --smoke PNG``: drive the real app over the demo study, scroll, and
check its own screenshot (the packaged binary's CI check)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from ..app.main import App

__all__ = ["SMOKE_SLICE", "SMOKE_TIMEOUT_S", "smoke"]


#: The demo slice the smoke test scrolls to (not the first: scrolling is part of it).
SMOKE_SLICE = 5
#: Give up when the demo has not been shown and captured by then (first run included).
SMOKE_TIMEOUT_S = 60.0


class _SmokeRun:
    """`run`'s per-frame hook for ``--smoke``: demo shown -> slice -> screenshot -> stop.

    Each step waits for the app's own state (no sleeps); a state change needs 2 rendered
    frames before a screenshot shows it (DESIGN.md section 6).
    """

    def __init__(self, out: Path, *, timeout: float = SMOKE_TIMEOUT_S) -> None:
        self.out = out
        self.deadline = time.monotonic() + timeout
        self.step = "load"
        self.error: str | None = None
        self.expected: int | None = None
        self.box: tuple[int, int, int, int] | None = None
        self.image_size: tuple[int, int] | None = None
        self._mark = 0
        self._settle = 0

    def __call__(self, app: App) -> bool:
        if time.monotonic() > self.deadline:
            self.error = f"timed out after {SMOKE_TIMEOUT_S:g} s at step {self.step!r}"
            return False
        page = app.viewer_page
        handle = page.handle if page is not None else None
        if page is None or handle is None or handle.layout is None or not app.viewer.count:
            return True
        target = min(SMOKE_SLICE, app.viewer.count - 1)
        if self.step == "load":
            if page.slot == "ready" and handle.frame(target) is not None:
                self.expected = int(handle.layout.header(target).InstanceNumber) - 1
                self._mark = page.rendered_slices
                app.viewer.go(target)
                self.step = "show"
        elif self.step == "show":
            shown = app.viewer.index == target and page.rendered_slices > self._mark
            if shown and page.slot == "ready" and page.image_box() is not None:
                self._settle += 1
                if self._settle >= 2:
                    self.box = page.image_box()
                    self.image_size = app.viewer.image_size
                    self.out.unlink(missing_ok=True)
                    import dearpygui.dearpygui as dpg

                    dpg.output_frame_buffer(file=str(self.out))
                    self.step = "capture"
        elif self.step == "capture":
            return not (self.out.exists() and self.out.stat().st_size > 0)
        return True


def smoke(out: Path, *, config_dir: str | None) -> int:
    """Open the demo study in the real app, show slice SMOKE_SLICE, write a screenshot.

    Settings come from a throw-away directory unless --config-dir names one, so the
    smoke test never touches the user's servers. Exit 0 when the screenshot shows the
    expected slice (read back from the phantom's slice code), 2 without a display.
    """
    import numpy as np
    from PIL import Image

    from viewer.app.main import run
    from viewer.phantom import read_slice_code

    out = out.expanduser().absolute()
    if not out.parent.is_dir():
        print(f"error: {out.parent} is not a directory", file=sys.stderr)
        return EXIT_FAILED
    probe = _SmokeRun(out)
    with tempfile.TemporaryDirectory(prefix="zhiva-smoke-") as scratch:
        code = run(config_dir=config_dir or scratch, demo=True, on_frame=probe)
    if code != EXIT_OK:
        return code
    if probe.error is not None:
        print(f"smoke: failed: {probe.error}", file=sys.stderr)
        return EXIT_FAILED
    if probe.step != "capture" or probe.box is None or probe.image_size is None:
        print("smoke: failed: the window closed before the screenshot", file=sys.stderr)
        return EXIT_FAILED
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("RGB").crop(probe.box))
    columns, rows = probe.image_size
    try:
        shown = read_slice_code(pixels, source_shape=(rows, columns))
    except ValueError as exc:
        print(f"smoke: failed: {out} shows no demo slice: {exc}", file=sys.stderr)
        return EXIT_FAILED
    x0, y0, x1, y1 = probe.box
    print(f"smoke: wrote {out}; image at {x0},{y0},{x1},{y1}; slice code {shown}")
    if shown != probe.expected:
        print(f"smoke: failed: expected slice {probe.expected}, saw {shown}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
