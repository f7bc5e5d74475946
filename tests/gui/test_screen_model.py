"""A viewport's texels with no display: what each kind of change costs, and pyramids."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import render
from viewer.app.model.pyramids import PyramidCache
from viewer.app.model.screen import OVERLAY_COLOUR, ScreenImage
from viewer.loader import CachedFrame, InstanceHeader


class Target:
    """A texture target like `render.texture.TexturePool`, with plain buffers."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[int, int], np.ndarray] = {}
        self.acquired = 0

    def fitting(self, rows: int, columns: int) -> tuple[int, int]:
        return (-(-rows // 64) * 64, -(-columns // 64) * 64)

    def acquire(self, rows: int, columns: int) -> tuple[int | str, np.ndarray]:
        size = self.fitting(rows, columns)
        self.acquired += 1
        buffer = self.buffers.setdefault(size, np.zeros((*size, 4), np.float32))
        return f"texture-{size}", buffer


def _frame(pixels: np.ndarray, photometric: str = "MONOCHROME2") -> CachedFrame:
    return CachedFrame(pixels, photometric, InstanceHeader.of(_header(pixels)))


def _header(pixels: np.ndarray) -> object:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = b""
    return ds


def _image(rows: int = 2048, columns: int = 1600) -> tuple[CachedFrame, render.ImageInfo]:
    pixels = np.zeros((rows, columns), np.uint16)
    pixels[:, columns // 3] = 4000  # a one-pixel line
    pixels[rows // 2 :, :] += 1000
    pixels.flags.writeable = False
    frame = _frame(pixels)
    return frame, render.image_info(frame.header)


def _show(
    screen: ScreenImage,
    frame: CachedFrame,
    info: render.ImageInfo,
    transform: render.ViewTransform,
    target: Target,
    *,
    window: tuple[float, float] = (2000.0, 4000.0),
    invert: bool = False,
    pyramid: tuple[np.ndarray, ...] = (),
    viewport: tuple[float, float] = (800.0, 600.0),
    overlay: np.ndarray | None = None,
) -> render.DisplayPlan | None:
    return screen.show(
        frame, info, render.Window(*window), invert=invert, transform=transform,
        viewport_size=viewport, pyramid=pyramid, target=target, overlay=overlay,
    )  # fmt: skip


def test_window_level_recolours_the_texels_without_resampling() -> None:
    frame, info = _image()
    screen, target = ScreenImage(), Target()
    fit = render.ViewTransform.fit((800.0, 600.0), (1600, 2048))
    plan = _show(screen, frame, info, fit, target)
    assert plan is not None and screen.resampled == 1 and screen.coloured == 1
    assert plan.shape == (600, 470)  # 469 screen pixels wide, its edges mid-pixel
    buffer = next(iter(target.buffers.values()))
    lit = buffer[:600, :470, 0]
    assert lit.max(axis=0).argmax() == pytest.approx(470 / 3, abs=1)  # the line is there
    before = buffer.copy()
    _show(screen, frame, info, fit, target, window=(1000.0, 500.0))
    assert screen.resampled == 1 and screen.coloured == 2
    assert not np.array_equal(before, buffer)
    _show(screen, frame, info, fit, target, window=(1000.0, 500.0), invert=True)
    assert screen.resampled == 1 and screen.coloured == 3


def test_a_pan_of_a_wholly_visible_image_changes_nothing_but_where_it_is_drawn() -> None:
    frame, info = _image()
    screen, target = ScreenImage(), Target()
    small = render.ViewTransform.fit((800.0, 600.0), (1600, 2048)).zoomed(0.5, (400.0, 300.0))
    first = _show(screen, frame, info, small, target)
    moved = _show(screen, frame, info, small.panned(40.0, 12.0), target)
    assert first is not None and moved is not None
    assert (screen.resampled, screen.coloured) == (1, 1)
    assert moved.pmin == (first.pmin[0] + 40.0, first.pmin[1] + 12.0)
    # Zoomed in, a pan shows other pixels: resampled, through the same LUT.
    close = small.zoomed(8.0, (400.0, 300.0))
    _show(screen, frame, info, close, target)
    _show(screen, frame, info, close.panned(5.0, 0.0), target)
    assert screen.resampled == 3


def test_a_large_frame_without_its_pyramid_is_reduced_once_and_reads_the_pyramid_after() -> None:
    frame, info = _image(4096, 3328)
    screen, target = ScreenImage(), Target()
    viewport = (516.0, 635.0)
    fit = render.ViewTransform.fit(viewport, (3328, 4096))
    quick = _show(screen, frame, info, fit, target, viewport=viewport)
    assert quick is not None and quick.factor == 6 and quick.shape == (635, 516)
    quick_texels = target.buffers[(640, 576)][:635, :516].copy()
    pyramid = render.build_pyramid(frame.pixels)
    exact = _show(screen, frame, info, fit, target, viewport=viewport, pyramid=pyramid)
    assert exact is not None and exact.factor == 4 and screen.resampled == 2
    exact_texels = target.buffers[(640, 576)][:635, :516]
    # Both are area averages of the same boxes up to a stored pixel or so: nearly equal.
    assert np.abs(quick_texels - exact_texels).mean() < 0.02


def test_texture_spare_texels_repeat_the_image_edge() -> None:
    pixels = np.arange(100 * 90, dtype=np.uint16).reshape(100, 90) * 7
    frame = _frame(pixels)
    info = render.image_info(frame.header)
    screen, target = ScreenImage(), Target()
    viewport = (90.0, 100.0)
    plan = _show(
        screen, frame, info, render.ViewTransform(), target, window=(30000.0, 63000.0),
        viewport=viewport,
    )  # fmt: skip
    assert plan is not None and plan.shape == (100, 90)
    buffer = target.buffers[(128, 128)]
    assert np.array_equal(buffer[:100, 90], buffer[:100, 89])  # the spare column
    assert np.array_equal(buffer[100, :90], buffer[99, :90])  # and one spare row


def test_palette_colour_is_averaged_as_colours_not_as_indices() -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Rows, ds.Columns = 200, 200
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = b""
    for colour, entries in (("Red", [0, 65535, 0]), ("Green", [0, 0, 65535]), ("Blue", [0, 0, 0])):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [3, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", np.array(entries, "<u2").tobytes())
    pixels = np.zeros((200, 200), np.uint8)
    pixels[:, 0::2] = 1  # red
    pixels[:, 1::2] = 2  # green: averaging indices 1 and 2 would give 1 or 2, not yellow
    frame = CachedFrame(pixels, "PALETTE COLOR", InstanceHeader.of(ds))
    info = render.image_info(ds)
    screen, target = ScreenImage(), Target()
    viewport = (50.0, 50.0)
    plan = _show(screen, frame, info, render.ViewTransform.fit(viewport, (200, 200)), target,
                 viewport=viewport)  # fmt: skip
    assert plan is not None and plan.shape == (50, 50)
    texel = target.buffers[(64, 64)][25, 25]
    assert texel[:3] == pytest.approx((0.5, 0.5, 0.0), abs=0.01)


def test_pyramids_are_built_in_the_background_and_go_with_their_frame() -> None:
    cache = PyramidCache(min_side=512)
    try:
        small = np.zeros((256, 256), np.uint16)
        assert cache.levels(small) == () and not cache.wants_pyramid(small)
        large = np.ones((1024, 800), np.uint16)
        assert cache.levels(large) == ()  # asked for now, built on the worker
        assert cache.wait_until_idle(10)
        levels = cache.levels(large)
        assert [level.shape for level in levels] == [(512, 400), (256, 200)]
        assert cache.nbytes == sum(level.nbytes for level in levels)
        assert any(t.name.startswith("pyramid") for t in threading.enumerate())
        del large, levels
        gc.collect()
        assert cache.nbytes == 0  # the frame is gone, its pyramid too
    finally:
        assert cache.shutdown(timeout=10)
    assert not any(t.name.startswith("pyramid") for t in threading.enumerate())


def test_the_pyramid_budget_keeps_the_most_recently_used() -> None:
    cache = PyramidCache(min_side=512, budget=1_400_000)
    try:
        frames = [np.full((1024, 1024), i, np.uint16) for i in range(3)]
        for frame in frames:
            cache.want(frame)
            assert cache.wait_until_idle(10)
        assert cache.nbytes == 2 * 655_360  # two of the three fit
        assert cache.levels(frames[2]) != () and cache.levels(frames[0]) == ()
    finally:
        cache.shutdown(timeout=10)


def test_overlay_planes_are_max_pooled_over_the_image_and_go_when_switched_off() -> None:
    frame, info = _image(2048, 1600)
    overlay = np.zeros((2048, 1600), bool)
    overlay[1000, 100:1500] = True  # a one-pixel line, 4 stored pixels per texel here
    screen, target = ScreenImage(), Target()
    viewport = (400.0, 512.0)
    fit = render.ViewTransform.fit(viewport, (1600, 2048))
    plan = _show(screen, frame, info, fit, target, viewport=viewport, overlay=overlay)
    assert plan is not None and plan.shape == (512, 400)
    buffer = target.buffers[(512, 448)]
    painted = np.all(buffer[:512, :400] == np.float32(OVERLAY_COLOUR), axis=-1)
    assert 1 <= painted.any(axis=1).sum() <= 2  # one row of texels (two on an edge)
    assert painted.any(axis=0).sum() == pytest.approx(1400 / 4, abs=2)
    _show(screen, frame, info, fit, target, viewport=viewport, overlay=None)
    assert not np.all(buffer[:512, :400] == np.float32(OVERLAY_COLOUR), axis=-1).any()


def test_a_first_image_is_drawn_from_the_coarse_level_made_when_it_arrived() -> None:
    frame, info = _image(4096, 3328)
    cache = PyramidCache()
    try:
        assert cache.coarse(frame.pixels, wait=1.0) is None  # never asked: no waiting
        cache.prepare(frame.pixels)  # what the loader's thread does as it decodes it
        coarse = cache.coarse(frame.pixels, wait=10.0)
        assert coarse is not None and coarse[0] == 4
        assert np.array_equal(coarse[1], render.reduce(frame.pixels, 4))
        assert cache.levels(frame.pixels) == ()  # the pyramid only once it is shown
    finally:
        assert cache.shutdown(timeout=10)
    screen, target = ScreenImage(), Target()
    viewport = (516.0, 635.0)
    fit = render.ViewTransform.fit(viewport, (3328, 4096))
    plan = screen.show(
        frame, info, None, invert=False, transform=fit, viewport_size=viewport, pyramid=(),
        target=target, coarse=coarse,
    )  # fmt: skip
    # Averaged from the 832x1024 coarse level, not by a reduction of its own.
    assert plan is not None and plan.factor == 4 and plan.shape == (635, 516)
    row = target.buffers[(640, 576)][300, :516, 0]
    line = int(3328 // 3 * 516 / 3328)  # where the one-pixel line falls on screen
    assert row[line - 1 : line + 2].max() > row[50] + 0.01  # dimmed, never dropped
