"""render._viewport: the view transform, the camera functions and the display plan."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render import (
    NATIVE_MAX_SCALE,
    DisplayPlan,
    Placement,
    ViewTransform,
    fit_scale,
    image_placement,
    plan_display,
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


# -- ViewTransform -----------------------------------------------------------------------

finite = st.floats(-1e4, 1e4, allow_nan=False)
positive = st.floats(0.01, 100)


@st.composite
def transforms(draw: st.DrawFn) -> ViewTransform:
    """Zoom-pan transforms, with a flip or a quarter turn now and then."""
    transform = ViewTransform.scaling(draw(positive), draw(positive)).panned(
        draw(finite), draw(finite)
    )
    kind = draw(st.sampled_from(["plain", "flip", "turn"]))
    if kind == "flip":
        transform = transform.then(ViewTransform.scaling(-1.0, 1.0))
    elif kind == "turn":
        transform = transform.then(ViewTransform(a=0.0, b=-1.0, d=1.0, e=0.0))
    return transform


@settings(max_examples=200, deadline=None)
@given(transform=transforms(), point=st.tuples(finite, finite))
def test_image_and_screen_coordinates_round_trip(
    transform: ViewTransform, point: tuple[float, float]
) -> None:
    screen = transform.to_screen(point)
    assert transform.to_image(screen) == pytest.approx(point, rel=1e-9, abs=1e-6)
    assert transform.then(transform.inverse()).matrix == pytest.approx(np.eye(3), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(first=transforms(), second=transforms(), point=st.tuples(finite, finite))
def test_then_applies_one_transform_after_the_other(
    first: ViewTransform, second: ViewTransform, point: tuple[float, float]
) -> None:
    both = first.then(second)
    assert both.to_screen(point) == pytest.approx(
        second.to_screen(first.to_screen(point)), rel=1e-9, abs=1e-6
    )
    assert both.matrix == pytest.approx(second.matrix @ first.matrix)
    assert ViewTransform.from_matrix(both.matrix).matrix == pytest.approx(both.matrix)


@settings(max_examples=100, deadline=None)
@given(
    transform=transforms(),
    factor=st.floats(0.05, 20),
    about=st.tuples(finite, finite),
    point=st.tuples(finite, finite),
)
def test_zooming_keeps_its_point_and_scales_distances(
    transform: ViewTransform, factor: float, about: tuple[float, float], point: tuple[float, float]
) -> None:
    zoomed = transform.zoomed(factor, about)
    anchored = transform.to_image(about)
    assert zoomed.to_screen(anchored) == pytest.approx(about, rel=1e-9, abs=1e-6)
    sx, sy = transform.scale
    assert zoomed.scale == pytest.approx((sx * factor, sy * factor))
    moved = zoomed.panned(3.0, -4.0).to_screen(point)
    assert moved == pytest.approx(
        (zoomed.to_screen(point)[0] + 3.0, zoomed.to_screen(point)[1] - 4.0)
    )


def test_fit_centres_the_image_and_camera_matches_the_old_placement() -> None:
    fit = ViewTransform.fit((800.0, 600.0), (512, 512))
    (x0, y0), (x1, y1) = fit.image_rect((512, 512))
    assert (x0, y0, x1, y1) == pytest.approx((100.0, 0.0, 700.0, 600.0))
    camera = ViewTransform.camera((800.0, 600.0), (512, 384), 2.5, (30.0, -12.0), pixel_aspect=1.2)
    placement = image_placement((800.0, 600.0), (512, 384), 2.5, (30.0, -12.0), pixel_aspect=1.2)
    assert placement is not None and placement.scale == pytest.approx(camera.scale)
    assert camera.scale[1] == pytest.approx(camera.scale[0] * 1.2)
    with pytest.raises(ValueError):
        ViewTransform(a=0.0, e=0.0).inverse()
    with pytest.raises(ValueError):
        ViewTransform.from_matrix(np.ones((3, 3)))


# -- what the texture holds --------------------------------------------------------------


def _tiles(axis_starts: np.ndarray, axis_stops: np.ndarray) -> bool:
    """Boxes that follow each other without a gap or an overlap."""
    return bool(np.all(axis_starts[1:] == axis_stops[:-1]))


def test_a_mammogram_at_fit_reads_the_pyramid_level_at_screen_size() -> None:
    viewport, image = (1160.0, 635.0), (3328, 4096)
    fit = ViewTransform.fit(viewport, image)
    plan = plan_display(fit, viewport, image, levels=5)
    assert plan is not None
    # 6.45 stored pixels per screen pixel: level 2 (4 per level pixel), 1-2 per texel.
    assert plan.level == 2 and plan.factor == 4
    assert plan.rows.sampling == plan.columns.sampling == "area"
    assert plan.shape == (635, 516) and plan.rows.max_width == 2
    # The whole image, one texel per screen pixel, every level pixel in one box.
    assert plan.rows.starts[0] == 0 and plan.rows.stops[-1] == 1024
    assert plan.columns.starts[0] == 0 and plan.columns.stops[-1] == 832
    assert _tiles(plan.rows.starts, plan.rows.stops)
    assert _tiles(plan.columns.starts, plan.columns.stops)
    assert plan.pmin == (322.0, 0.0) and plan.pmax == (838.0, 635.0)
    # Without a pyramid the same texels come from the stored pixels (boxes of 6-7).
    direct = plan_display(fit, viewport, image)
    assert direct is not None and direct.level == 0 and direct.shape == plan.shape
    assert direct.rows.max_width == 7 and _tiles(direct.rows.starts, direct.rows.stops)


def test_a_ct_slightly_magnified_keeps_its_own_pixels() -> None:
    viewport, image = (1160.0, 635.0), (512, 512)
    plan = plan_display(ViewTransform.fit(viewport, image), viewport, image)
    assert plan is not None
    assert plan.rows.sampling == "native" and plan.shape == (512, 512)
    assert plan.pmax[1] - plan.pmin[1] == pytest.approx(635.0)
    # In a quarter of the window it is minified: screen size, area average.
    small = (575.0, 300.0)
    quarter = plan_display(ViewTransform.fit(small, image), small, image)
    assert quarter is not None and quarter.rows.sampling == "area"
    # 300 screen pixels high; 301 wide, since its edges fall mid-pixel (137.5 to 437.5).
    assert quarter.shape == (300, 301)


def test_zoomed_in_far_each_screen_pixel_shows_the_nearest_stored_pixel() -> None:
    viewport, image = (400.0, 300.0), (512, 512)
    transform = ViewTransform.fit(viewport, image).zoomed(8.0, (200.0, 150.0))
    plan = plan_display(transform, viewport, image)
    assert plan is not None and plan.rows.sampling == plan.columns.sampling == "nearest"
    assert plan.shape == (300, 400) and plan.pmin == (0.0, 0.0) and plan.pmax == (400.0, 300.0)
    for x in (0, 57, 399):
        column, _ = transform.to_image((x + 0.5, 0.0))
        assert plan.columns.starts[x] == int(column)
    assert transform.scale[0] > NATIVE_MAX_SCALE


def test_an_image_off_screen_is_not_planned_and_rotation_is_refused() -> None:
    viewport, image = (400.0, 300.0), (512, 512)
    assert plan_display(ViewTransform.fit(viewport, image).panned(900, 0), viewport, image) is None
    with pytest.raises(ValueError):
        plan_display(ViewTransform(a=0.0, b=1.0, d=1.0, e=0.0), viewport, image)


def test_panning_a_wholly_visible_image_keeps_its_texels() -> None:
    viewport, image = (800.0, 600.0), (2048, 2048)
    fit = ViewTransform.fit(viewport, image).zoomed(0.5, (400.0, 300.0))
    plan = plan_display(fit, viewport, image, levels=4)
    moved = plan_display(fit.panned(17.0, -9.0), viewport, image, levels=4)
    assert plan is not None and moved is not None
    assert moved.same_texels(plan) and moved.pmin == (plan.pmin[0] + 17, plan.pmin[1] - 9)
    # Part of it off screen: other pixels are visible, so other texels.
    clipped = plan_display(fit.panned(300.0, 0.0), viewport, image, levels=4)
    assert clipped is not None and not clipped.same_texels(plan)


@settings(max_examples=300, deadline=None)
@given(
    viewport=st.tuples(st.integers(64, 1600), st.integers(64, 1000)),
    image=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    zoom=st.floats(0.05, 40),
    pan=st.tuples(st.floats(-2000, 2000), st.floats(-2000, 2000)),
    aspect=st.floats(0.5, 2.0),
    levels=st.integers(1, 6),
)
def test_a_texture_never_holds_more_texels_than_the_screen_shows(
    viewport: tuple[int, int],
    image: tuple[int, int],
    zoom: float,
    pan: tuple[float, float],
    aspect: float,
    levels: int,
) -> None:
    size = (float(viewport[0]), float(viewport[1]))
    transform = ViewTransform.camera(size, image, zoom, pan, pixel_aspect=aspect)
    plan = plan_display(transform, size, image, levels=levels)
    (x0, y0), (x1, y1) = transform.image_rect(image)
    shown_w = max(0.0, min(x1, size[0]) - max(x0, 0.0))
    shown_h = max(0.0, min(y1, size[1]) - max(y0, 0.0))
    if plan is None:
        assert shown_w <= 0 or shown_h <= 0
        return
    rows, columns = plan.shape
    # Bounded by the viewport (plus the one partly covered pixel at each edge) ...
    assert columns <= viewport[0] + 1 and rows <= viewport[1] + 1
    for axis, count, shown, length in (
        (plan.columns, columns, shown_w, image[0]),
        (plan.rows, rows, shown_h, image[1]),
    ):
        if axis.sampling == "native":
            assert count <= length  # ... and by the image's own pixels when stretched
        else:
            assert count <= math.ceil(shown) + 1  # ... or by its size on screen
        # Boxes inside the level, at least one pixel each, in order.
        level_length = -(-length // plan.factor)
        assert np.all(axis.starts >= 0) and np.all(axis.stops <= level_length)
        assert np.all(axis.stops > axis.starts) and np.all(np.diff(axis.starts) >= 0)
        if axis.sampling == "area" and 0 < plan.level < levels - 1:
            # A coarser level was there: this one leaves 1-2 level pixels per texel along
            # the axis shrunk least, the other shrunk by the pixel aspect more.
            assert axis.max_width <= math.ceil(2 * max(aspect, 1 / aspect)) + 1


def test_display_plans_are_not_compared_by_value() -> None:
    plan = plan_display(ViewTransform.fit((10.0, 10.0), (5, 5)), (10.0, 10.0), (5, 5))
    assert isinstance(plan, DisplayPlan) and plan.same_texels(plan) and not plan.same_texels(None)
