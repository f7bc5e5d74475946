"""PNG export of the slice on screen, with its overlay text burned in.

Plain Python (numpy + Pillow, no dearpygui): the page passes the displayed RGBA
(the slice at its own resolution) and the corner text from `ViewportState.overlays`,
which already leaves the patient out when asked to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["export_png"]

_TEXT = (230, 230, 120)


def export_png(rgba: np.ndarray, corners: Mapping[str, Sequence[str]], path: Path) -> Path:
    """Write `rgba` (rows, columns, 4) float in [0, 1] as an 8-bit PNG with the text."""
    pixels = np.clip(np.asarray(rgba, dtype=np.float32)[..., :3] * 255.0 + 0.5, 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    width, height = image.size
    line = 12
    for key, lines in corners.items():
        right, bottom = key.endswith("right"), key.startswith("bottom")
        for n, text in enumerate(lines):
            y = height - line * (len(lines) - n) - 4 if bottom else 4 + n * line
            x = width - draw.textlength(text) - 4 if right else 4
            draw.text((x, y), text, fill=_TEXT)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path
