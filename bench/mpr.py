"""Benchmark MPR: a coronal/sagittal frame and a thick slab vs an axial frame.

Run:  .venv/bin/python bench/mpr.py [--slices 300] [--rounds 15]

The 300 x 512 x 512 int16 phantom CT (the suite's series, from its shared cache of
generated test data; other sizes are generated into a temporary folder) is read by a
`SeriesLoader` from local files until every slice is in its frame cache, then made
into a volume the way the viewer's MPR does (`MprVolume.build`: the slices copied into
one block, which the cache then holds instead of its own arrays). A "frame" is what
the viewer does per plane shown: `render.plane_image` (the plane's stored values)
then `render.render_pixels` through the series' display LUT into an RGBA buffer of
the plane's size. The baseline, measured in the same run, is the axial frame (the
slice as the stack viewer shows it) and a plain `np.copyto` of one 512 x 512 RGBA
frame (the memory-bandwidth floor).

Targets (issue 16): coronal/sagittal frame <= 2x the axial frame; a 20 mm MIP slab
frame < 16.7 ms; extra memory beyond the frame cache < 10% of the volume. The extra
memory is measured: the process's resident memory (RSS) before and after building
the volume, less what the frame cache's own count of bytes grew by; and the same for
a plain copy of the volume (`Volume.allocate`, filled), for comparison. Per frame,
tracemalloc's peak of what one plane or slab allocates. Nothing here asserts; tests
never time anything.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
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
from tests.support.testdata import PHANTOM_ARGS, ensure_phantom  # noqa: E402
from viewer import phantom  # noqa: E402
from viewer.app.model.mpr import MprVolume, _return_freed_memory  # noqa: E402
from viewer.loader import LocalFolderSource, SeriesLoader  # noqa: E402


def per_call_ms(func: Callable[[], Any], *, number: int, repeat: int) -> float:
    func()
    return statistics.median(timeit.Timer(func).repeat(repeat=repeat, number=number)) / number * 1e3


def _rss() -> int:
    """Resident memory of this process, in bytes (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _series(slices: int, tmp: Path) -> tuple[str, str, list[Path]]:
    """(study UID, series UID, files) of the uncompressed phantom series."""
    if slices == PHANTOM_ARGS["slices"]:
        manifest = ensure_phantom()
    else:
        manifest = phantom.generate_study(tmp, slices=slices, rows=512, cols=512,
                                          variants=("uncompressed",))  # fmt: skip
    series = manifest["uncompressed"]
    return manifest.study_uid, series.series_uid, list(series.paths)


def build(slices: int, tmp: Path) -> tuple[SeriesLoader, MprVolume, dict[str, float]]:
    """The series read into a loader's frame cache, then its MPR volume built from
    the cache; the loader, the volume and what each step took (seconds, bytes)."""
    study_uid, series_uid, paths = _series(slices, tmp)
    loader = SeriesLoader(LocalFolderSource(paths))
    started = time.perf_counter()
    handle = loader.open_series(series_uid, study_uid=study_uid)
    handle.opened.result(timeout=120)
    if not loader.wait_until_idle(timeout=600) or not handle.progress().complete:
        raise SystemExit(f"the series did not load: {handle.progress()}")
    loaded = time.perf_counter() - started
    cache = loader.cache
    gc.collect()
    _return_freed_memory()  # what loading freed is not counted against the volume
    rss, cached = _rss(), cache.nbytes
    started = time.perf_counter()
    stack = MprVolume(loader.open_series(series_uid, study_uid=study_uid))
    if not stack.build() or stack.volume is None:
        raise SystemExit(f"no volume: {stack.failure}")
    built = time.perf_counter() - started
    gc.collect()
    extra = (_rss() - rss) - (cache.nbytes - cached)
    # The other way of holding it, for comparison: a copy of the same values.
    rss = _rss()
    volume = stack.volume
    copy = render.Volume.allocate(volume.geometry, volume.data.dtype)
    for k in range(volume.data.shape[0]):
        copy.put(k, volume.data[k])
    copied = _rss() - rss
    del copy
    figures = {"loaded": loaded, "built": built, "extra": extra, "copy": copied}
    return loader, stack, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        loader, stack, figures = build(args.slices, Path(tmp))
        try:
            report(stack, figures, args.rounds)
        finally:
            stack.release()
            loader.shutdown()


def report(stack: MprVolume, figures: dict[str, float], rounds: int) -> None:
    volume, info = stack.volume, stack.info
    assert volume is not None and info is not None
    size = volume.data.nbytes
    print(f"volume {volume.data.shape} {volume.data.dtype}, {size / 2**20:.0f} MiB: "
          f"series loaded in {figures['loaded']:.1f} s, volume built from the frame "
          f"cache in {figures['built'] * 1e3:.0f} ms")  # fmt: skip
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
    memcpy = per_call_ms(lambda: np.copyto(copy_dst, copy_src), number=20, repeat=rounds)
    axial = per_call_ms(frame("axial"), number=10, repeat=rounds)
    print(f"baseline memcpy of a 512x512 RGBA frame: {memcpy:.2f} ms")
    print(f"axial frame:    {axial:.2f} ms  ({axial / memcpy:.2f}x memcpy)")
    for kind in ("coronal", "sagittal"):
        ms = per_call_ms(frame(kind), number=10, repeat=rounds)
        p = planes[kind]
        print(f"{kind + ' frame:':15} {ms:.2f} ms  ({ms / axial:.2f}x axial; {p.columns}x{p.rows} "
              f"drawn at aspect {p.pixel_aspect:.2f}; target <= 2x)")  # fmt: skip
    for kind in ("axial", "coronal", "sagittal"):
        ms = per_call_ms(frame(kind, 20.0), number=5, repeat=rounds)
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
    print(f"extra memory of the volume beyond the frame cache (RSS): "
          f"{figures['extra'] / 2**20:.1f} MiB ({figures['extra'] / size * 100:.1f}% of the "
          f"volume; target < 10%); a copy instead (Volume.allocate, filled): "
          f"{figures['copy'] / 2**20:.1f} MiB ({figures['copy'] / size * 100:.0f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
