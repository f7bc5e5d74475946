"""render.texture: the viewport's texture pool, driven through a fake dearpygui."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from render.texture import TEXTURE_GRANULARITY, TexturePool, bucket, check_texture_array


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


def test_one_texture_reused_for_every_slice_of_a_size() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    tag, buffer = pool.acquire(635, 516)
    for _ in range(50):  # scrolling a stack
        assert pool.acquire(635, 516) == (tag, buffer)
    assert api.count("add_raw_texture") == 1 and api.count("add_texture_registry") == 1
    width, height, kwargs = next(args for call, args in api.calls if call == "add_raw_texture")
    assert (width, height) == (576, 640) and kwargs["format"] == api.mvFormat_Float_rgba
    assert api.values[tag] is buffer and buffer.shape == (640, 576, 4)
    check_texture_array(buffer, 640, 576)
    assert pool.texels == 640 * 576


def test_sizes_are_bucketed_and_a_slightly_smaller_need_reuses_the_texture() -> None:
    assert bucket(1, 1) == (TEXTURE_GRANULARITY, TEXTURE_GRANULARITY)
    assert bucket(640, 641) == (640, 704)
    with pytest.raises(ValueError):
        bucket(0, 5)
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    tag, _ = pool.acquire(600, 600)
    for need in ((599, 600), (580, 590), (560, 560)):  # a zoom drag, a window resize
        assert pool.acquire(*need)[0] == tag
    assert api.count("add_raw_texture") == 1
    # Much smaller: uploading the spare texels every frame would cost more than a new one.
    small, _ = pool.acquire(200, 200)
    assert small != tag and pool.current == (256, 256)
    larger, _ = pool.acquire(700, 700)
    assert larger not in (tag, small) and pool.current == (704, 704)


def test_prune_deletes_the_sizes_no_longer_drawn_and_release_deletes_all() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    first, _ = pool.acquire(100, 100)
    second, _ = pool.acquire(400, 300)
    assert set(pool.sizes) == {(128, 128), (448, 320)}
    assert pool.prune() == 1 and first not in api.items and second in api.items
    assert pool.sizes == ((448, 320),) and pool.prune() == 0
    pool.release()
    assert second not in api.items and pool.sizes == () and pool.current is None
    assert pool.buffer() is None and pool.texels == 0
    # Usable again (the page came back).
    assert pool.acquire(10, 10)[0] in api.items


def test_draw_takes_the_texels_used_of_a_bucketed_texture() -> None:
    api = FakeDearPyGui()
    pool = TexturePool(api=api)
    with pytest.raises(RuntimeError):
        pool.draw(7, (10, 10), (0, 0), (10, 10))
    tag, _ = pool.acquire(635, 516)
    pool.draw(7, (635, 516), (322.0, 0.0), (838.0, 635.0))
    _, (texture, pmin, pmax, kwargs) = api.calls[-1]
    assert texture == tag and pmin == (322.0, 0.0) and pmax == (838.0, 635.0)
    assert kwargs["uv_min"] == (0.0, 0.0) and kwargs["parent"] == 7
    assert kwargs["uv_max"] == pytest.approx((516 / 576, 635 / 640))
