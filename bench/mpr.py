"""Benchmark MPR: a coronal/sagittal frame and a thick slab vs an axial frame.

Run:  .venv/bin/python bench/mpr.py [--slices 300] [--rounds 15]

The 300 x 512 x 512 int16 phantom CT (the suite's series) as one `render.Volume`.
A "frame" is what the viewer does per plane shown: `render.plane_image` (the plane's
stored values) then `render.render_pixels` through the series' display LUT into an
RGBA buffer of the plane's size. The baseline, measured in the same run, is the axial
frame (the slice as the stack viewer shows it) and a plain `np.copyto` of one
512 x 512 RGBA frame (the memory-bandwidth floor).

Targets (issue 16): coronal/sagittal frame <= 2x the axial frame; a 20 mm MIP slab
frame < 16.7 ms; extra memory beyond the frame cache < 10% of the volume. Memory is
reported for both ways of holding the volume: on the loader's own per-series array
(what the viewer does when the cache keeps the series in one block) and as a copy
(`Volume.allocate`). Nothing here asserts; tests never time anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# This folder has a render.py of its own: make `import render` find the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import render  # noqa: E402
from viewer.phantom import iter_ct_datasets, phantom_pixels  # noqa: E402


def per_call_ms(func: Callable[[], Any], *, number: int, repeat: int) -> float:
    func()
    return statistics.median(timeit.Timer(func).repeat(repeat=repeat, number=number)) / number * 1e3


def build(slices: int) -> tuple[render.Volume, render.ImageInfo]:
    first = next(iter_ct_datasets(slices=slices))
    info = render.image_info(first)
    geometries = [
        render.SliceGeometry(512, 512, (-179.0, -179.0, 1.25 * k), (1, 0, 0, 0, 1, 0))
        for k in range(slices)
    ]
    geometry = render.volume_geometry(geometries, (0.7, 0.7))
    storage = np.empty(geometry.shape, np.int16)  # stands for the loader's series block
    volume = render.Volume(geometry, storage)
    for k in range(slices):
        storage[k] = phantom_pixels(k, slices)
        volume.put(k, storage[k])
    return volume, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    started = time.perf_counter()
    volume, info = build(args.slices)
    print(f"volume {volume.data.shape} int16, {volume.data.nbytes / 2**20:.0f} MiB, "
          f"built in {time.perf_counter() - started:.1f} s")  # fmt: skip
    voi = render.Window(40, 400)
    luts = render.LUTCache()
    centre = volume.geometry.centre
    planes = {k: render.plane_geometry(volume.geometry, k) for k in render.PLANE_AXES}
    buffers = {
        k: np.empty((p.rows, p.columns, 4), np.float32) for k, p in planes.items()
    }  # fmt: skip

    def frame(kind: render.PlaneKind, slab_mm: float = 0.0) -> Callable[[], None]:
        plane, out = planes[kind], buffers[kind]
        start = plane.nearest_index(centre)
        step = iter(range(10**9))

        def run() -> None:
            # Scrolling: each call shows the next plane (60 planes about the centre).
            index = start + next(step) % 60 - 30
            image = render.plane_image(volume, plane, index, slab_mm=slab_mm, mode="mip")
            render.render_pixels(image.pixels, info, voi, cache=luts, out=out)

        return run

    copy_src = np.ones((512, 512, 4), np.float32)
    copy_dst = np.empty_like(copy_src)
    memcpy = per_call_ms(lambda: np.copyto(copy_dst, copy_src), number=20, repeat=args.rounds)
    axial = per_call_ms(frame("axial"), number=10, repeat=args.rounds)
    print(f"baseline memcpy of a 512x512 RGBA frame: {memcpy:.2f} ms")
    print(f"axial frame:    {axial:.2f} ms  ({axial / memcpy:.2f}x memcpy)")
    for kind in ("coronal", "sagittal"):
        ms = per_call_ms(frame(kind), number=10, repeat=args.rounds)
        p = planes[kind]
        print(f"{kind + ' frame:':15} {ms:.2f} ms  ({ms / axial:.2f}x axial; {p.columns}x{p.rows} "
              f"drawn at aspect {p.pixel_aspect:.2f}; target <= 2x)")  # fmt: skip
    for kind in ("axial", "coronal", "sagittal"):
        ms = per_call_ms(frame(kind, 20.0), number=5, repeat=args.rounds)
        planes_in = max(1, round(20.0 / planes[kind].step))
        print(f"20 mm MIP {kind:9} {ms:.2f} ms  ({planes_in} planes; {ms / axial:.2f}x axial; "
              f"target < 16.7 ms)")  # fmt: skip
    # Memory a frame allocates beyond the volume (the frame cache holds the volume).
    for label, kind, slab in (("coronal frame", "coronal", 0.0), ("20 mm MIP", "coronal", 20.0)):
        tracemalloc.start()
        render.plane_image(volume, planes[kind], planes[kind].nearest_index(centre), slab_mm=slab)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"extra memory, {label}: {peak / 2**20:.2f} MiB "
              f"({peak / volume.data.nbytes * 100:.2f}% of the volume)")  # fmt: skip
    print(f"extra memory of the volume on the loader's series block: 0 MiB (0%); as a copy "
          f"(Volume.allocate): {volume.data.nbytes / 2**20:.0f} MiB (100%)")  # fmt: skip


if __name__ == "__main__":
    main()
