"""Benchmark the render path: frame -> RGBA texture pixels, LUT rebuilds, J2K decode.

Run:  .venv/bin/python bench/render.py [--rounds 3]

Every figure is compared with baselines measured in the same run, on the same
machine, so the ratios mean something even when the machine is busy:

* our path: one `np.take` through a precomputed display LUT (512x512 int16 CT);
* (a) the straightforward float formula (rescale, LINEAR window, fill RGBA);
* (b) `np.copyto` into an output buffer of the same size: the memory-bandwidth floor.

Targets (issue 3): ours <= 2x the copy, >= 4x faster than the float formula,
LUT rebuild on a window change < 1 ms. Then JPEG 2000 decode throughput on one
and two threads, per decoder plugin, and whether each releases the GIL.
Nothing here asserts; tests never time anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import timeit
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.decoders import base as decoder_base
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

# This file is itself called render.py and Python put its folder first on the
# path: drop it, so `import render` finds the package at the repository root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import render  # noqa: E402  (after the sys.path fix above)

ROWS = COLUMNS = 512
SLOPE, INTERCEPT = 1.0, -1024.0
WINDOW = render.Window(40, 400)  # abdomen-ish LINEAR window, in HU


def ct_frame(seed: int = 0, radius: int = 200) -> np.ndarray:
    """A 512x512 int16 CT-like slice: air, a soft-tissue disc, bone, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ROWS, 0:COLUMNS]
    r2 = (x - 256) ** 2 + (y - 256) ** 2
    hu = np.where(r2 < radius**2, 40.0, -1000.0)
    hu = np.where((x - 256) ** 2 + (y - 330) ** 2 < 30**2, 1200.0, hu)
    hu += rng.normal(0, 15, hu.shape)
    return np.round(hu - INTERCEPT).astype(np.int16)


def per_call_ms(func: Callable[[], Any], *, number: int, repeat: int = 15) -> float:
    """Median over `repeat` batches of the mean time per call, in ms."""
    func()  # warm caches and lazy imports
    batches = timeit.Timer(func).repeat(repeat=repeat, number=number)
    return statistics.median(batches) / number * 1e3


def texture_figures() -> dict[str, float]:
    stored = ct_frame()
    out = np.empty((ROWS, COLUMNS, 4), np.float32)
    source = np.ones_like(out)
    spec = render.LUTSpec(signed=True, modality=render.Rescale(SLOPE, INTERCEPT))
    lut = render.build_display_lut(spec, WINDOW)

    def float_formula() -> np.ndarray:
        hu = stored.astype(np.float32) * SLOPE + INTERCEPT
        c, w = WINDOW.center, WINDOW.width
        grey = np.clip((hu - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)
        rgba = np.empty((ROWS, COLUMNS, 4), np.float32)
        rgba[..., :3] = grey[..., None]
        rgba[..., 3] = 1.0
        return rgba

    expected = float_formula()
    assert np.max(np.abs(lut.apply(stored) - expected)) <= 1 / 255, "LUT path disagrees"

    windows = iter(render.Window(float(c), 400) for c in range(10**9))
    return {
        "copy_ms": per_call_ms(lambda: np.copyto(out, source), number=200),
        "float_ms": per_call_ms(float_formula, number=50),
        "lut_ms": per_call_ms(lambda: lut.apply(stored, out=out), number=200),
        "lut_alloc_ms": per_call_ms(lambda: lut.apply(stored), number=100),
        "rebuild_ms": per_call_ms(lambda: render.build_display_lut(spec, next(windows)), number=20),
    }


def j2k_series(count: int) -> list[Dataset]:
    """`count` JPEG 2000 Lossless CT frames, encoded with pydicom's pylibjpeg encoder."""
    series = []
    for index in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.set_pixel_data(ct_frame(index, 150 + index), "MONOCHROME2", 16)
        ds.RescaleSlope, ds.RescaleIntercept = SLOPE, INTERCEPT
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        series.append(ds)
    return series


def frames_per_second(
    decode: Callable[[Dataset], Any], series: list[Dataset], threads: int
) -> float:
    jobs = series * 2
    if threads == 1:
        start = time.perf_counter()
        for ds in jobs:
            decode(ds)
    else:
        with ThreadPoolExecutor(threads) as pool:
            start = time.perf_counter()
            list(pool.map(decode, jobs))
    return len(jobs) / (time.perf_counter() - start)


def longest_stall_ms(decode: Callable[[Dataset], Any], series: list[Dataset]) -> float:
    """The longest pause of a pure-Python loop while another thread decodes.

    This is what the render loop would feel: a decoder that holds the GIL
    stalls it for a whole frame decode (tens of ms); one that releases it
    only for its short Python parts. Unlike a two-thread speed-up it does not
    depend on a second core being free.
    """
    worker = threading.Thread(target=lambda: [decode(ds) for ds in series])
    longest, last = 0.0, time.perf_counter()
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    return longest * 1e3


def decode_figures(series: list[Dataset]) -> dict[str, float]:
    render.decoder_status(JPEG2000Lossless)  # registers our imagecodecs plugin
    decoder = decoder_base.get_decoder(JPEG2000Lossless)
    figures: dict[str, float] = {}
    plugins: dict[str, Callable[[Dataset], Any]] = {"render (default)": render.decode_frame}
    for name in ("imagecodecs", "pylibjpeg", "gdcm", "pillow"):
        if name in decoder.available_plugins:
            plugins[name] = lambda ds, name=name: decoder.as_array(
                ds, index=0, decoding_plugin=name
            )
    for label, decode in plugins.items():
        figures[f"{label}|1"] = frames_per_second(decode, series, 1)
        figures[f"{label}|2"] = frames_per_second(decode, series, 2)
        figures[f"{label}|stall"] = longest_stall_ms(decode, series[:8])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="whole-benchmark repeats; medians are shown"
    )
    parser.add_argument("--frames", type=int, default=16, help="J2K frames in the test series")
    args = parser.parse_args()

    print(f"encoding {args.frames} JPEG 2000 Lossless 512x512 int16 frames ...", flush=True)
    series = j2k_series(args.frames)
    size = sum(len(ds.PixelData) for ds in series) / len(series)
    print(f"  mean compressed size {size / 1024:.0f} KiB (raw 512 KiB)")

    rounds: list[dict[str, float]] = []
    for index in range(args.rounds):
        print(f"round {index + 1}/{args.rounds} ...", flush=True)
        rounds.append({**texture_figures(), **decode_figures(series)})
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}

    copy, floats, lut = median["copy_ms"], median["float_ms"], median["lut_ms"]
    print()
    print(f"512x512 int16 CT -> RGBA float32, median of {args.rounds} rounds")
    print(f"  np.copyto, same-size buffer     {copy:7.3f} ms   (baseline b)")
    print(f"  float formula                   {floats:7.3f} ms   (baseline a)")
    print(
        f"  LUT take into texture buffer    {lut:7.3f} ms   {lut / copy:4.2f}x the copy (target <= 2), "
        f"{floats / lut:4.1f}x faster than the formula (target >= 4)"
    )
    print(f"  LUT take, new array             {median['lut_alloc_ms']:7.3f} ms")
    print(f"  LUT rebuild on window change    {median['rebuild_ms']:7.3f} ms   (target < 1)")
    print()
    load = os.getloadavg()[0]
    print(
        f"JPEG 2000 Lossless decode, frames/s on 1 and 2 threads (load average {load:.1f} on "
        f"{os.cpu_count()} cores), and the longest stall of another Python thread"
    )
    labels = sorted({key.split("|")[0] for key in median if "|" in key})
    for label in labels:
        one, two, stall = median[f"{label}|1"], median[f"{label}|2"], median[f"{label}|stall"]
        # Holding the GIL for a whole decode stalls the other thread for about
        # one frame time; releasing it leaves only the short Python parts.
        verdict = "holds the GIL" if stall > 0.5 * 1e3 / one else "releases the GIL"
        print(
            f"  {label:18s} {one:6.1f}  {two:6.1f}  ({two / one:4.2f}x)"
            f"   stall {stall:5.1f} ms: {verdict}"
        )
    print()
    print(
        "per round:",
        *(
            f"{k}={[round(r[k], 3) for r in rounds]}"
            for k in ("copy_ms", "float_ms", "lut_ms", "rebuild_ms")
        ),
    )


if __name__ == "__main__":
    main()
