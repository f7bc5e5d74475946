"""Benchmark `render.overlay_mask` on a mammogram-sized overlay (3328x4096).

Run:  .venv/bin/python bench/overlay.py [--rounds 3]

Compared with baselines measured in the same run, on the same machine:

* (a) pydicom's `Dataset.overlay_array(0x6000)`: the same unpacking, as a library does it;
* (b) `np.copyto` of a same-size boolean mask: the memory-bandwidth floor.

Cases: one overlay at origin 1\\1 (the common case, no placement), the same
with an origin offset (placed into a fresh mask), and two groups OR-ed. The
target (issue 13 item 18): a few milliseconds per frame. pydicom only unpacks
one group (no placement, no OR), so it is the floor for the first case. Nothing
asserts; tests never time anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

# This folder holds bench/render.py, which would shadow the package: drop the folder.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import render  # noqa: E402  (after the sys.path fix above)

ROWS, COLUMNS = 3328, 4096


def mammogram(groups: int, origin: tuple[int, int]) -> Dataset:
    """A header with `groups` graphics overlays of random bits (pixel data left empty)."""
    rng = np.random.default_rng(0)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored = ROWS, COLUMNS, 16, 12
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = b""
    for n in range(groups):
        group = 0x6000 + 2 * n
        bits = rng.random(ROWS * COLUMNS) < 0.01
        ds.add_new((group, 0x0010), "US", ROWS)
        ds.add_new((group, 0x0011), "US", COLUMNS)
        ds.add_new((group, 0x0040), "CS", "G")
        ds.add_new((group, 0x0050), "SS", list(origin))
        ds.add_new((group, 0x0100), "US", 1)
        ds.add_new((group, 0x0102), "US", 0)
        ds.add_new((group, 0x3000), "OW", np.packbits(bits, bitorder="little").tobytes())
    return ds


def per_call_ms(func: Callable[[], Any], *, number: int = 10, repeat: int = 9) -> float:
    """Median over `repeat` batches of the mean time per call, in ms."""
    func()  # warm caches and lazy imports
    batches = timeit.Timer(func).repeat(repeat=repeat, number=number)
    return statistics.median(batches) / number * 1e3


def figures() -> dict[str, float]:
    plain, offset, two = mammogram(1, (1, 1)), mammogram(1, (5, -3)), mammogram(2, (1, 1))
    source = np.ones((ROWS, COLUMNS), np.bool_)
    target = np.empty_like(source)
    return {
        "copy": per_call_ms(lambda: np.copyto(target, source)),
        "pydicom": per_call_ms(lambda: plain.overlay_array(0x6000), number=3),
        "plain": per_call_ms(lambda: render.overlay_mask(plain)),
        "offset": per_call_ms(lambda: render.overlay_mask(offset)),
        "two": per_call_ms(lambda: render.overlay_mask(two)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are shown")
    args = parser.parse_args()
    rounds = [figures() for _ in range(args.rounds)]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    copy, library = median["copy"], median["pydicom"]
    print(f"overlay mask {ROWS}x{COLUMNS}, median of {args.rounds} rounds")
    print(f"  np.copyto, same-size bool mask    {copy:7.2f} ms   (baseline b)")
    print(f"  pydicom overlay_array             {library:7.2f} ms   (baseline a)")
    for key, label in (
        ("plain", "one overlay at 1\\1"),
        ("offset", "one overlay, origin offset"),
        ("two", "two overlays OR-ed"),
    ):
        ms = median[key]
        print(
            f"  {label:<32} {ms:7.2f} ms   {ms / copy:5.1f}x the copy, {ms / library:5.1f}x pydicom"
        )


if __name__ == "__main__":
    main()
