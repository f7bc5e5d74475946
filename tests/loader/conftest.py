"""Fixtures for the loader tests: a small phantom folder, wrappers that gate or break a
source, and helpers that wait on the loader's own events (never on sleeps).

The phantom is generated small (40 slices of 64x64, a multi-frame of 8 frames and the
J2K variant) so that local tests take milliseconds; the PACS tests use the session's
300-slice study.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from net import InstanceSummary, SeriesSummary, StudySource, TransportError
from viewer import phantom
from viewer.loader import (
    FrameReady,
    LoaderEvent,
    LocalFolderSource,
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


def events_until(
    loader: SeriesLoader, done: Callable[[LoaderEvent, list[LoaderEvent]], bool]
) -> list[LoaderEvent]:
    """Drain the results queue, as the UI does, until `done(event, seen)` says so."""
    seen: list[LoaderEvent] = []
    deadline = time.monotonic() + WAIT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the expected event did not come; saw {seen[-5:]}")
        try:
            event = loader.results.get(timeout=left)
        except queue.Empty:
            continue
        seen.append(event)
        if done(event, seen):
            return seen


def until_ready(loader: SeriesLoader, indices: set[int]) -> list[LoaderEvent]:
    """Drain events until every slice in `indices` was reported ready."""
    pending = set(indices)

    def done(event: LoaderEvent, _: list[LoaderEvent]) -> bool:
        if isinstance(event, FrameReady) and event.generation == loader.generation:
            pending.discard(event.index)
        return not pending

    return events_until(loader, done)


def until_opened(loader: SeriesLoader) -> SeriesOpened:
    events = events_until(
        loader,
        lambda e, _: isinstance(e, SeriesOpened) and e.generation == loader.generation,
    )
    opened = events[-1]
    assert isinstance(opened, SeriesOpened)
    return opened


def ready_indices(loader: SeriesLoader, generation: int | None = None) -> list[int]:
    """Slices in the order the loader's trace says they entered the cache."""
    generation = loader.generation if generation is None else generation
    return [
        e.index
        for e in loader.trace()
        if e.kind == "ready" and e.generation == generation and e.index is not None
    ]


def loader_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("series-loader")}


__all__ = [
    "SMALL",
    "WAIT",
    "Delegate",
    "FlakySource",
    "GatedSource",
    "StudySource",
    "events_until",
    "loader_threads",
    "ready_indices",
    "source_pixels",
    "until_opened",
    "until_ready",
]
