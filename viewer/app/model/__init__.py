"""The Viewer's GUI-free parts: what each viewport shows and how, tested with no display.

Plain Python (numpy, render, the loader's values): no dearpygui import anywhere in
this package, which one import-linter contract checks as a whole. The views beside
it (`viewer.app.viewer_page`) only turn its state into widgets and input into calls.
"""

from .pyramids import (
    DEFAULT_PYRAMID_BUDGET,
    PYRAMID_MIN_FRAME_SIDE,
    PYRAMID_NICENESS,
    PyramidCache,
)
from .screen import ScreenImage, TextureTarget

__all__ = [
    "DEFAULT_PYRAMID_BUDGET",
    "PYRAMID_MIN_FRAME_SIDE",
    "PYRAMID_NICENESS",
    "PyramidCache",
    "ScreenImage",
    "TextureTarget",
]
