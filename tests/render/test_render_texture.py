"""render.texture: pure placement maths, and the pool driven through a fake dearpygui."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render.texture import (
    Placement,
    TexturePool,
    check_texture_array,
    fit_scale,
    image_placement,
    screen_to_image,
    zoom_about,
)


def test_zoom_one_fits_and_centres_the_image() -> None:
    placement = image_placement((800, 600), (512, 512))
    assert placement == Placement(
        pmin=(100.0, 0.0),
        pmax=(700.0, 600.0),
        uv_min=(0.0, 0.0),
        uv_max=(1.0, 1.0),
        scale=(600 / 512, 600 / 512),
    )


def test_zoom_two_shows_the_middle_half_of_the_texture() -> None:
    placement = image_placement((512, 512), (512, 512), zoom=2.0)
    assert placement is not None
    assert placement.pmin == (0.0, 0.0) and placement.pmax == (512.0, 512.0)
    assert placement.uv_min == pytest.approx((0.25, 0.25))
    assert placement.uv_max == pytest.approx((0.75, 0.75))


def test_pan_moves_the_image_and_clips_uv() -> None:
    placement = image_placement((512, 512), (512, 512), zoom=1.0, pan=(256.0, 0.0))
    assert placement is not None
    assert placement.pmin == (256.0, 0.0) and placement.pmax == (512.0, 512.0)
    assert placement.uv_min == (0.0, 0.0) and placement.uv_max == pytest.approx((0.5, 1.0))


def test_image_panned_out_of_view_is_not_drawn() -> None:
    assert image_placement((512, 512), (512, 512), pan=(600.0, 0.0)) is None


def test_non_square_pixels_keep_their_physical_proportions() -> None:
    # 100 x 100 pixels, each twice as tall as wide: shown twice as tall.
    placement = image_placement((400, 400), (100, 100), pixel_aspect=2.0)
    assert placement is not None
    assert placement.pmax[0] - placement.pmin[0] == pytest.approx(200.0)
    assert placement.pmax[1] - placement.pmin[1] == pytest.approx(400.0)
    assert fit_scale((400, 400), (100, 100), pixel_aspect=2.0) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "arguments",
    [
        ((0, 10), (10, 10), 1.0, 1.0),
        ((10, 10), (0, 10), 1.0, 1.0),
        ((10, 10), (10, 10), 0.0, 1.0),
        ((10, 10), (10, 10), 1.0, 0.0),
    ],
)
def test_bad_sizes_and_zoom_are_refused(arguments: tuple[Any, Any, float, float]) -> None:
    viewport, image, zoom, aspect = arguments
    with pytest.raises(ValueError):
        image_placement(viewport, image, zoom, pixel_aspect=aspect)


def test_screen_to_image_maps_corners_and_centre() -> None:
    args = ((800.0, 600.0), (512, 512))
    assert screen_to_image((100.0, 0.0), *args) == pytest.approx((0.0, 0.0))
    assert screen_to_image((700.0, 600.0), *args) == pytest.approx((512.0, 512.0))
    assert screen_to_image((400.0, 300.0), *args, zoom=3.0, pan=(10.0, -20.0)) == pytest.approx(
        (256 - 10 / (3 * 600 / 512), 256 + 20 / (3 * 600 / 512))
    )


@settings(max_examples=100, deadline=None)
@given(
    point=st.tuples(st.floats(0, 800), st.floats(0, 600)),
    zoom=st.floats(0.1, 20),
    new_zoom=st.floats(0.1, 20),
    pan=st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
    aspect=st.floats(0.5, 2),
)
def test_zoom_about_keeps_the_point_under_the_cursor(
    point: tuple[float, float],
    zoom: float,
    new_zoom: float,
    pan: tuple[float, float],
    aspect: float,
) -> None:
    viewport, image = (800.0, 600.0), (512, 384)
    before = screen_to_image(point, viewport, image, zoom, pan, pixel_aspect=aspect)
    new_pan = zoom_about(point, viewport, image, zoom, pan, new_zoom, pixel_aspect=aspect)
    after = screen_to_image(point, viewport, image, new_zoom, new_pan, pixel_aspect=aspect)
    assert after == pytest.approx(before, abs=1e-6)


def test_check_texture_array_refuses_what_would_read_out_of_bounds() -> None:
    good = np.zeros((4, 6, 4), np.float32)
    check_texture_array(good, 4, 6)
    with pytest.raises(TypeError):
        check_texture_array(good.astype(np.float64), 4, 6)
    with pytest.raises(TypeError):
        check_texture_array(good.astype(np.uint8), 4, 6)
    with pytest.raises(ValueError):
        check_texture_array(good, 6, 4)
    with pytest.raises(ValueError):
        check_texture_array(np.zeros((4, 6, 3), np.float32), 4, 6)
    with pytest.raises(ValueError):
        check_texture_array(np.zeros((4, 12, 4), np.float32)[:, ::2], 4, 6)


class FakeDearPyGui:
    """Records the calls TexturePool makes; ids like dearpygui's integers."""

    mvFormat_Float_rgba = 0

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.values: dict[int, np.ndarray] = {}
        self.items: set[int] = set()
        self._next = 100

    def _new(self) -> int:
        self._next += 1
        self.items.add(self._next)
        return self._next

    def add_texture_registry(self, **kwargs: Any) -> int:
        self.calls.append(("add_texture_registry", kwargs))
        return self._new()

    def add_raw_texture(
        self, width: int, height: int, default_value: np.ndarray, **kwargs: Any
    ) -> int:
        self.calls.append(("add_raw_texture", (width, height, kwargs)))
        tag = self._new()
        self.values[tag] = default_value
        return tag

    def set_value(self, item: int, value: np.ndarray) -> None:
        self.calls.append(("set_value", item))
        self.values[item] = value

    def draw_image(self, texture: int, pmin: Any, pmax: Any, **kwargs: Any) -> int:
        self.calls.append(("draw_image", (texture, pmin, pmax, kwargs)))
        return self._new()

    def does_item_exist(self, item: int) -> bool:
        return item in self.items

    def delete_item(self, item: int) -> None:
        self.calls.append(("delete_item", item))
        self.items.discard(item)

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


def test_one_raw_texture_per_size_reused_for_every_slice() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    tag = pool.texture(512, 512)
    for _ in range(50):  # scrolling a stack
        assert pool.show(np.zeros((512, 512, 4), np.float32)) == tag
    assert api.count("add_raw_texture") == 1 and api.count("add_texture_registry") == 1
    other = pool.texture(256, 320)
    assert other != tag and api.count("add_raw_texture") == 2
    width, height, kwargs = [args for call, args in api.calls if call == "add_raw_texture"][1]
    assert (width, height) == (320, 256) and kwargs["format"] == api.mvFormat_Float_rgba
    assert set(pool.sizes) == {(512, 512), (256, 320)}


def test_buffer_is_what_the_texture_points_at() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    buffer = pool.buffer(4, 6)
    tag = pool.texture(4, 6)
    assert buffer.dtype == np.float32 and buffer.shape == (4, 6, 4) and buffer.flags.c_contiguous
    assert api.values[tag] is buffer
    elsewhere = np.ones((4, 6, 4), np.float32)
    pool.show(elsewhere)
    assert api.values[tag] is elsewhere
    assert pool.buffer(4, 6) is buffer and api.values[tag] is buffer  # pointed back


def test_show_refuses_wrong_arrays_before_dearpygui_sees_them() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    with pytest.raises(TypeError):
        pool.show(np.zeros((4, 6, 4), np.float64))
    with pytest.raises(ValueError):
        pool.show(np.zeros((4, 6), np.float32))
    assert api.count("set_value") == 0 and api.count("add_raw_texture") == 0


def test_show_keeps_the_array_alive() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    tag = pool.show(np.full((2, 2, 4), 0.5, np.float32))  # no other reference exists
    import gc

    gc.collect()
    assert float(api.values[tag][0, 0, 0]) == 0.5
    assert pool._shown[(2, 2)] is api.values[tag]


def test_draw_passes_the_placement_and_skips_invisible_images() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    placement = image_placement((512, 512), (512, 512), zoom=2.0)
    pool.draw(7, 512, 512, placement)
    _, (texture, pmin, pmax, kwargs) = api.calls[-1]
    assert texture == pool.texture(512, 512) and pmin == (0.0, 0.0) and pmax == (512.0, 512.0)
    assert kwargs["uv_min"] == pytest.approx((0.25, 0.25)) and kwargs["parent"] == 7
    assert pool.draw(7, 512, 512, None) is None


def test_release_deletes_textures() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    tags = {pool.texture(2, 2), pool.texture(3, 3)}
    pool.release()
    assert tags.isdisjoint(api.items) and pool.sizes == ()
