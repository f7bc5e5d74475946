"""Reading a ``zhiva-viewer --smoke PNG`` screenshot back: shared by the smoke test of
the source tree (tests/gui) and of the packaged binary (tests/packaging)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from viewer.demo import DEMO_SIZE
from viewer.phantom import read_slice_code

__all__ = ["check_smoke_png"]

_BOX = re.compile(r"image at (\d+),(\d+),(\d+),(\d+); slice code (\d+)")


def check_smoke_png(png: Path, stdout: str) -> int:
    """Assert the screenshot shows a demo slice (its code and body); return the code.

    The smoke run prints where the image is in the screenshot; the slice code is read
    here from the pixels, independently of the app's own check.
    """
    match = _BOX.search(stdout)
    assert match is not None, stdout
    x0, y0, x1, y1, printed = (int(v) for v in match.groups())
    with Image.open(png) as image:
        shot = np.asarray(image.convert("RGB"))
    crop = shot[y0:y1, x0:x1]
    assert crop.shape[0] > 100 and crop.shape[1] > 100, crop.shape
    code = read_slice_code(crop, source_shape=(DEMO_SIZE, DEMO_SIZE))
    assert code == printed
    # The phantom's body: soft tissue (grey) inside, air (black) in the corners.
    h, w = crop.shape[:2]
    inside = crop[h // 2 - 5 : h // 2 + 5, w // 4 : w // 4 + 10, 0]
    assert 40 < int(np.median(inside)) < 220, np.median(inside)
    assert int(crop[h - 5 :, :5, 0].max()) < 10
    return code
