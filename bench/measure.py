"""Benchmark ROI statistics while dragging: time per update on a CT slice and a mammogram.

Run:  .venv/bin/python bench/measure.py [--rounds 30]

A drag moves the ROI by a pixel or two per frame and each move recomputes the
region's mask and its statistics (`viewer.measure.measure`: mask, stored values,
modality transform, mean/SD/min/max/count). Sizes: a 512x512 int16 CT slice and a
3328x4096 uint16 mammogram, each with an ellipse, a rectangle and a 200-vertex
polygon covering 10% of the image. Baselines measured in the same run on the same
pixel count: `np.mean` of the region's pixels already gathered (the least any mean
can cost) and a plain copy of the region's bounding box (memory bandwidth).
Target (issue 15): < 16 ms per update for a 10% ROI on the mammogram.
Nothing here asserts; tests never time anything.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import render  # noqa: E402
from viewer.measure import (  # noqa: E402
    ImageData,
    ImageRef,
    ellipse_from_box,
    measure,
    new_measurement,
)

IMAGE = ImageRef("1.2.3", 0)


def _median_ms(step: Callable[[int], object], rounds: int) -> float:
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench(name: str, stored: np.ndarray, transform: render.ModalityTransform, rounds: int) -> None:
    rows, cols = stored.shape
    data = ImageData(
        stored=stored,
        transform=transform,
        calibration=render.ImageCalibration(render.Calibration(0.07, 0.07, "pixel spacing")),
        units="HU",
    )
    # A box of 10% of the image's area with the image's aspect ratio.
    side = math.sqrt(0.1)
    width, height = cols * side, rows * side
    x0, y0 = cols / 2 - width / 2, rows / 2 - height / 2
    ellipse_box = math.sqrt(4 / math.pi)  # the inscribed ellipse: same 10% area
    ew, eh = width * ellipse_box, height * ellipse_box
    angles = np.linspace(0, 2 * math.pi, 200, endpoint=False)
    shapes = {
        "ellipse": lambda dx: new_measurement(
            "ellipse",
            IMAGE,
            ellipse_from_box(
                (cols / 2 - ew / 2 + dx, rows / 2 - eh / 2),
                (cols / 2 + ew / 2 + dx, rows / 2 + eh / 2),
            ),
        ),
        "rectangle": lambda dx: new_measurement(
            "rectangle", IMAGE, [(x0 + dx, y0), (x0 + width + dx, y0 + height)]
        ),
        "polygon": lambda dx: new_measurement(
            "polygon",
            IMAGE,
            [
                (cols / 2 + dx + ew / 2 * math.cos(a), rows / 2 + eh / 2 * math.sin(a))
                for a in angles
            ],
        ),
    }
    count = int(0.1 * rows * cols)
    gathered = stored.reshape(-1)[:count].copy()
    box = stored[int(y0) : int(y0 + height), int(x0) : int(x0 + width)]
    out = np.empty_like(box)
    mean_ms = _median_ms(lambda i: gathered.mean(), rounds)
    copy_ms = _median_ms(lambda i: np.copyto(out, box), rounds)
    print(f"\n{name} ({cols}x{rows} {stored.dtype}), ROI = 10% = {count} px")
    print(f"  baseline np.mean of {count} gathered px: {mean_ms:6.2f} ms")
    print(f"  baseline copy of the ROI's box:          {copy_ms:6.2f} ms")
    for shape, make in shapes.items():
        measure(make(0), data)  # warm-up
        ms = _median_ms(lambda i, make=make: measure(make(i % 7), data), rounds)  # type: ignore[misc]
        stats = measure(make(0), data).statistics
        pixels = stats.count if stats is not None else 0
        target = "  (target < 16 ms)" if name == "mammogram" else ""
        print(
            f"  {shape:9s} update: {ms:6.2f} ms = {ms / mean_ms:5.1f}x np.mean, "
            f"{ms / copy_ms:5.1f}x copy; {pixels} px{target}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ct = (rng.normal(40, 15, (512, 512)) + 1024).astype(np.int16)
    bench("CT slice", ct, render.Rescale(1.0, -1024.0), args.rounds)
    mammogram = rng.integers(0, 4096, size=(4096, 3328), dtype=np.uint16)
    bench("mammogram", mammogram, render.Rescale(), args.rounds)


if __name__ == "__main__":
    main()
