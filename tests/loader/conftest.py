"""Fixtures for the loader tests: a small phantom folder, wrappers that gate or break a
source, and helpers that wait on the loader's own events (never on sleeps).

The phantom is generated small (40 slices of 64x64, a multi-frame of 8 frames and the
J2K variant) so that local tests take milliseconds; the PACS tests use the session's
300-slice study.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

import render
from net import InstanceSummary, RenderedImage, SeriesSummary, StudySource, TransportError
from viewer import phantom
from viewer.loader import (
    FrameReady,
    LoaderEvent,
    LoaderHub,
    LocalFolderSource,
    SeriesHandle,
    SeriesLoader,
    SeriesOpened,
)

SMALL = {"slices": 40, "rows": 64, "cols": 64, "multiframe_frames": 8, "multiframe_size": 64}
WAIT = 30.0  # generous: a test that waits this long has failed, it does not pass slowly


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> phantom.StudyManifest:
    root = tmp_path_factory.mktemp("phantom")
    variants: tuple[phantom.Variant, ...] = ("uncompressed", "multiframe")
    if phantom.j2k_available():
        variants = (*variants, "j2k")
    manifest = phantom.generate_study(root, variants=variants, **SMALL)  # type: ignore[arg-type]
    (root / "notes.txt").write_text("not DICOM")  # a folder holds other files too
    return manifest


@pytest.fixture(scope="session")
def study_root(small_study: phantom.StudyManifest) -> Path:
    return small_study.series["uncompressed"].paths[0].parents[1]


@pytest.fixture
def local(study_root: Path) -> LocalFolderSource:
    return LocalFolderSource(study_root)


def source_pixels(path: Path, frame: int = 0) -> np.ndarray:
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    return pixels[frame] if int(ds.get("NumberOfFrames") or 1) > 1 else pixels


def check_all_frames(handle: SeriesHandle, manifest: phantom.SeriesManifest) -> None:
    """Every slice of the handle's layout is in memory, identical to its file."""
    layout = handle.layout
    assert layout is not None
    paths = dict(zip(manifest.sop_uids, manifest.paths, strict=True))
    for index, ref in enumerate(layout.slices):
        frame = handle.frame(index)
        assert frame is not None, f"slice {index} missing"
        assert np.array_equal(frame.pixels, source_pixels(paths[ref.sop_uid], ref.frame))


class Delegate:
    """Passes every call to `inner` (so it keeps `inner`'s protocols: StudySource,
    RenderingSource), letting subclasses override a few."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # StudySource, spelled out so isinstance(StudySource) holds without __getattr__.
    def search_studies(self, *a: Any, **k: Any) -> Any:
        return self.inner.search_studies(*a, **k)

    def search_series(self, *a: Any, **k: Any) -> list[SeriesSummary]:
        return self.inner.search_series(*a, **k)  # type: ignore[no-any-return]

    def search_instances(self, *a: Any, **k: Any) -> list[InstanceSummary]:
        return self.inner.search_instances(*a, **k)  # type: ignore[no-any-return]

    def series_metadata(self, *a: Any, **k: Any) -> list[Dataset]:
        return self.inner.series_metadata(*a, **k)  # type: ignore[no-any-return]

    def study_metadata(self, *a: Any, **k: Any) -> list[Dataset]:
        return self.inner.study_metadata(*a, **k)  # type: ignore[no-any-return]

    def iter_series(self, *a: Any, **k: Any) -> Iterator[Dataset]:
        return self.inner.iter_series(*a, **k)  # type: ignore[no-any-return]

    def retrieve_instance(self, *a: Any, **k: Any) -> Dataset:
        return self.inner.retrieve_instance(*a, **k)  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


class GatedSource(Delegate):
    """A source whose series stream stops before part `after` until `gate` is set.

    The test decides when the stream may go on, so what the loader does meanwhile
    (single requests around the cursor, a switch to another series) is deterministic.
    `closed` says the loader closed the stream (a cancelled stream must).
    """

    def __init__(self, inner: Any, after: int = 0, *, only: str | None = None) -> None:
        super().__init__(inner)
        self.after = after
        self.only = only  # hold only this series' stream
        self.gate = threading.Event()
        self.waiting = threading.Event()  # the stream is blocked at the gate
        self.delivered = 0
        self.closed = threading.Event()

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        if self.only is not None and series_uid != self.only:
            yield from self.inner.iter_series(study_uid, series_uid)
            return
        try:
            for ds in self.inner.iter_series(study_uid, series_uid):
                if self.delivered >= self.after and not self.gate.is_set():
                    self.waiting.set()
                    self.gate.wait(WAIT)
                self.delivered += 1
                yield ds
        finally:
            self.closed.set()


class FlakySource(Delegate):
    """Fails single retrievals of chosen instances (a TransportError) while `broken`;
    their part is left out of streams too, so only single requests can bring them."""

    def __init__(self, inner: Any, broken: set[str]) -> None:
        super().__init__(inner)
        self.broken = set(broken)
        self.attempts: dict[str, int] = {}

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        self.attempts[sop_uid] = self.attempts.get(sop_uid, 0) + 1
        if sop_uid in self.broken:
            raise TransportError(f"injected failure for {sop_uid}")
        return self.inner.retrieve_instance(study_uid, series_uid, sop_uid)  # type: ignore[no-any-return]

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        for ds in self.inner.iter_series(study_uid, series_uid):
            if str(ds.SOPInstanceUID) not in self.broken:
                yield ds


class FakeRenderingServer(Delegate):
    """A local folder that also answers /rendered, /thumbnail and WADO-URI, recording
    the window each /rendered request carried."""

    def __init__(self, inner: LocalFolderSource) -> None:
        super().__init__(inner)
        self.windows: list[tuple[float, float] | None] = []
        self.lock = threading.Lock()

    def _png(self, ds: Dataset, frame: int, window: tuple[float, float] | None) -> RenderedImage:
        voi = render.Window(window[0], window[1]) if window else None
        rgba = render.frame_to_rgba(ds, frame, voi)
        grey = (rgba[..., 0] * 255 + 0.5).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(grey, "L").save(buffer, format="PNG")
        return RenderedImage(data=buffer.getvalue(), media_type="image/png", source="rendered")

    def rendered(self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None,
                 *, frame: int | None = None, viewport: Any = None,
                 window: tuple[float, float] | None = None, quality: Any = None) -> RenderedImage:  # fmt: skip
        with self.lock:
            self.windows.append(window)
        ds = self.inner.retrieve_instance(study_uid, series_uid, sop_uid)
        return self._png(ds, (frame or 1) - 1, window)

    def thumbnail(self, study_uid: str, series_uid: str, sop_uid: str | None = None, *,
                  viewport: tuple[int, int] = (128, 128)) -> RenderedImage:  # fmt: skip
        first = self.inner.search_instances(study_uid, series_uid)[0]
        ds = self.inner.retrieve_instance(study_uid, series_uid, first.sop_instance_uid)
        return self._png(ds, 0, None)

    def wado_uri(self, study_uid: str, series_uid: str, sop_uid: str, *,
                 content_type: str = "application/dicom", frame: int | None = None) -> Any:  # fmt: skip
        ds = self.inner.retrieve_instance(study_uid, series_uid, sop_uid)
        if content_type == "application/dicom":
            return pydicom.dcmread(io.BytesIO(Path(ds.filename).read_bytes()))
        return self._png(ds, (frame or 1) - 1, None)

    def retrieve_frames(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError


def events_until(
    where: SeriesLoader | LoaderHub | SeriesHandle,
    done: Callable[[LoaderEvent, list[LoaderEvent]], bool],
) -> list[LoaderEvent]:
    """Drain the hub's results queue, as the UI does, until `done(event, seen)` says so."""
    results = where.loader.results if isinstance(where, SeriesHandle) else where.results
    seen: list[LoaderEvent] = []
    deadline = time.monotonic() + WAIT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the expected event did not come; saw {seen[-5:]}")
        try:
            event = results.get(timeout=left)
        except queue.Empty:
            continue
        seen.append(event)
        if done(event, seen):
            return seen


def until_ready(handle: SeriesHandle, indices: set[int]) -> list[LoaderEvent]:
    """Drain events until every slice in `indices` was reported ready to `handle`."""
    pending = set(indices)

    def done(event: LoaderEvent, _: list[LoaderEvent]) -> bool:
        if isinstance(event, FrameReady) and event.handle is handle:
            pending.discard(event.index)
        return not pending

    return events_until(handle, done)


def until_opened(handle: SeriesHandle) -> SeriesOpened:
    events = events_until(handle, lambda e, _: isinstance(e, SeriesOpened) and e.handle is handle)
    opened = events[-1]
    assert isinstance(opened, SeriesOpened)
    return opened


def ready_indices(handle: SeriesHandle, generation: int | None = None) -> list[int]:
    """Slices in the order the loader's trace says they entered the cache."""
    generation = handle.generation if generation is None else generation
    return [
        e.index
        for e in handle.loader.trace()
        if e.kind == "ready" and e.generation == generation and e.index is not None
    ]


def loader_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("series-loader")}


__all__ = [
    "SMALL",
    "WAIT",
    "Delegate",
    "FakeRenderingServer",
    "FlakySource",
    "GatedSource",
    "StudySource",
    "check_all_frames",
    "events_until",
    "loader_threads",
    "ready_indices",
    "source_pixels",
    "until_opened",
    "until_ready",
]
