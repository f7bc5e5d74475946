"""`SeriesLoader` against the test PACS (Orthanc 1.10 + DICOMweb behind nginx TLS).

The 300-slice 512x512 phantom series must arrive identical to the generated files,
in the order the loader promises (checked from its trace, with the stream held at a
gate the test opens), within a memory budget smaller than the series, through every
rendering protocol, and complete — none lost, none twice — through a transport that
fails a tenth of the requests, drops connections mid-body and delays answers.
"""

from __future__ import annotations

import itertools
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pydicom
import pytest

from net import DicomWebClient, RetryPolicy, ServerConfig
from tests.loader.conftest import (
    WAIT,
    GatedSource,
    events_until,
    loader_threads,
    ready_indices,
    until_ready,
)
from tests.support.pacs import TestPacs
from viewer.loader import (
    FirstImage,
    FrameReady,
    InstanceDiskCache,
    SeriesHandle,
    SeriesLoader,
)

pytestmark = pytest.mark.integration

QUICK = RetryPolicy(max_attempts=5, backoff_base=0.01, backoff_max=0.05)
SLICE = 512 * 512 * 2
#: A `layout_wait` no test outlives: the loader never asks for /metadata beside a stream.
NEVER = 24 * 3600.0


@pytest.fixture(scope="module")
def client(pacs: TestPacs, pacs_server_config: ServerConfig) -> Iterator[DicomWebClient]:
    with DicomWebClient(pacs_server_config, httpx.BasicAuth(*pacs.admin_auth)) as c:
        yield c


@pytest.fixture(scope="module")
def source_frames(pacs: TestPacs) -> dict[str, np.ndarray]:
    """Stored values of every phantom frame, by (SOP UID) or (SOP UID, frame) key."""
    frames: dict[str, np.ndarray] = {}
    for variant in ("uncompressed", "multiframe"):
        for path in pacs.data.series(variant).paths:
            ds = pydicom.dcmread(path)
            frames[str(ds.SOPInstanceUID)] = ds.pixel_array
    return frames


def assert_identical(
    handle: SeriesHandle, frames: dict[str, np.ndarray], indices: range | None = None
) -> None:
    layout = handle.layout
    assert layout is not None
    for index in indices if indices is not None else range(len(layout)):
        ref = layout.slices[index]
        frame = handle.frame(index)
        assert frame is not None, f"slice {index} missing"
        expected = frames[ref.sop_uid]
        expected = expected[ref.frame] if expected.ndim == 3 else expected
        assert np.array_equal(frame.pixels, expected), f"slice {index} differs"


def assert_each_once(handle: SeriesHandle, count: int) -> None:
    assert sorted(ready_indices(handle)) == list(range(count))


def _whole_series_from_one_stream(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    unc = pacs.data.series("uncompressed")
    # The layout comes from the stream here, on any machine: with the default
    # LAYOUT_WAIT_S a stream slowed by a busy machine gets /metadata beside it (that
    # timer has its own test in test_loader.py), and "one request" would not hold.
    with SeriesLoader(client, layout_wait=NEVER) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid)
        first = events_until(loader, lambda e, _: isinstance(e, FirstImage))[-1]
        assert isinstance(first, FirstImage) and first.image.pixels.shape == (512, 512)
        assert loader.wait_until_idle(WAIT)
        assert handle.layout is not None and len(handle.layout) == 300
        assert_identical(handle, source_frames)
        assert_each_once(handle, 300)
        requests = [e.detail for e in loader.trace() if e.kind == "request"]
        assert requests == ["stream"]  # one request for 300 instances, metadata included
        progress = handle.progress()
        assert progress is not None and progress.complete
        assert progress.bytes_received > 300 * SLICE  # the instances, headers included


def test_whole_series_arrives_identical_from_one_stream(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    _whole_series_from_one_stream(client, pacs, source_frames)


def test_whole_series_arrives_identical_through_nginx_default_buffers(
    pacs: TestPacs, pacs_server_config: ServerConfig, source_frames: dict[str, np.ndarray]
) -> None:
    # nginx as it ships (4 KiB proxy buffers, proxy_buffering off): the stream comes in
    # 4 KiB TLS records, so part boundaries and headers are split across many reads.
    config = msgspec.structs.replace(
        pacs_server_config, name="Default buffers", url=pacs.default_buffers_base_url
    )
    with DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth)) as client:
        _whole_series_from_one_stream(client, pacs, source_frames)


def test_jpeg2000_series_decodes_in_the_pool_identical_to_the_source(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    j2k, unc = pacs.data.series("j2k"), pacs.data.series("uncompressed")
    # The J2K series is the uncompressed one encoded losslessly: same pixels, slice by slice.
    twin = dict(zip(j2k.sop_uids, (source_frames[s] for s in unc.sop_uids), strict=True))
    with SeriesLoader(client, workers=3) as loader:
        handle = loader.open_series(j2k.series_uid, study_uid=pacs.data.study_uid)
        handle.opened.result(WAIT * 2)
        assert loader.wait_until_idle(WAIT)
        assert_identical(handle, twin)
        assert_each_once(handle, 300)


def test_cursor_in_the_middle_is_served_first_then_its_neighbours(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    unc = pacs.data.series("uncompressed")
    gated = GatedSource(client, after=0)
    with SeriesLoader(gated, workers=3, prefetch_radius=4) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid, cursor=150)
        until_ready(handle, set(range(146, 155)))
        order = ready_indices(handle)
        assert order[:5] == [150, 151, 149, 152, 148]
        assert set(order) == set(range(146, 155))
        kinds = [e.detail for e in loader.trace() if e.kind == "request"]
        assert kinds[:2] == ["metadata", "instance"]  # a cursor needs the layout first
        gated.gate.set()
        assert loader.wait_until_idle(WAIT)
        assert_each_once(handle, 300)
        assert_identical(handle, source_frames, range(0, 300, 7))


def test_jump_to_the_far_end_is_served_before_the_rest(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    unc = pacs.data.series("uncompressed")
    gated = GatedSource(client, after=10)
    with SeriesLoader(gated, workers=3, prefetch_radius=2) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid, cursor=150)
        layout = handle.opened.result(WAIT)
        until_ready(handle, {148, 150, 152})
        assert gated.waiting.wait(WAIT)
        # The far end the stream reaches last (it goes in instance order: instance 300,
        # the feet, is slice 0; it has delivered instances 1-10, slices 299-290).
        target = min(range(300), key=lambda i: -layout.slices[i].stream_rank)
        assert target == 0
        handle.set_cursor(target)
        until_ready(handle, {0, 1, 2})
        trace = loader.trace()
        jump = next(e.seq for e in trace if e.kind == "cursor" and e.index == target)
        assert [e.index for e in trace if e.kind == "ready" and e.seq > jump][:3] == [0, 1, 2]
        gated.gate.set()
        assert loader.wait_until_idle(WAIT)
        assert_each_once(handle, 300)
        assert_identical(handle, source_frames, range(0, 300, 11))


def _pool_connections(client: DicomWebClient) -> list[object] | None:
    pool = getattr(
        getattr(getattr(client._http, "_client", None), "_transport", None), "_pool", None
    )
    return list(pool.connections) if pool is not None else None


def test_closing_a_handle_cancels_its_stream_and_its_connection(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    unc, multi = pacs.data.series("uncompressed"), pacs.data.series("multiframe")
    gated = GatedSource(client, after=20, only=unc.series_uid)
    before = loader_threads()
    with SeriesLoader(gated, workers=3) as loader:
        first = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid)
        assert gated.waiting.wait(WAIT)
        old = first.generation
        first.close()
        handle = loader.open_series(multi.series_uid)
        layout = handle.opened.result(WAIT)
        assert len(layout) == multi.frames
        gated.gate.set()
        assert loader.wait_until_idle(WAIT)
        assert gated.closed.is_set() and gated.delivered < 300
        trace = loader.trace()
        closed = next(e.seq for e in trace if e.kind == "close" and e.generation == old)
        assert any(e.kind == "cancelled" and e.generation == old for e in trace)
        assert all(
            e.kind in ("stale", "cancelled")
            for e in trace
            if e.generation == old and e.seq > closed
        )
        assert_identical(handle, source_frames)
        connections = _pool_connections(client)
        if connections is not None:  # httpx internals: checked when they are as expected
            assert all(c.is_idle() or c.is_closed() for c in connections)  # type: ignore[attr-defined]
    assert loader_threads() == before


def test_memory_stays_under_a_budget_smaller_than_the_series(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    unc = pacs.data.series("uncompressed")
    budget = 40 * SLICE
    with SeriesLoader(client, memory_budget=budget) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid, cursor=150)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        assert sorted(i for i in range(300) if handle.frame(i) is not None) == list(range(130, 170))
        handle.set_cursor(10)
        assert loader.wait_until_idle(WAIT)
        assert sorted(i for i in range(300) if handle.frame(i) is not None) == list(range(0, 40))
        assert loader.cache.peak_nbytes <= budget
        assert_identical(handle, source_frames, range(0, 40))
        # Forty slices twice: single requests, not a 300-slice stream mostly thrown away.
        assert "stream" not in {e.detail for e in loader.trace() if e.kind == "request"}


def test_multiframe_jumps_use_frame_requests(
    client: DicomWebClient, pacs: TestPacs, source_frames: dict[str, np.ndarray]
) -> None:
    multi = pacs.data.series("multiframe")
    frame = multi.rows * multi.cols * 2
    with SeriesLoader(client, memory_budget=6 * frame) as loader:
        handle = loader.open_series(multi.series_uid, study_uid=pacs.data.study_uid, cursor=15)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        kinds = [e.detail for e in loader.trace() if e.kind == "request"]
        assert "frames" in kinds and "instance" not in kinds and "stream" not in kinds
        assert sorted(i for i in range(multi.frames) if handle.frame(i) is not None) == list(
            range(12, 18)
        )
        assert_identical(handle, source_frames, range(12, 18))


def test_server_rendered_images_follow_the_window(client: DicomWebClient, pacs: TestPacs) -> None:
    unc = pacs.data.series("uncompressed")
    with SeriesLoader(client, image_rendering="https", memory_budget=12 * 512 * 512 * 3) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid, cursor=150)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        default = handle.frame(150)
        assert default is not None and default.server_rendered and default.pixels.dtype == np.uint8
        assert handle.set_window((-600.0, 1500.0))  # lung: air is no longer black
        assert loader.wait_until_idle(WAIT)
        lung = handle.frame(150)
        assert lung is not None and lung.window == (-600.0, 1500.0)
        assert lung.pixels.mean() > default.pixels.mean() + 5
        kinds = Counter(e.detail for e in loader.trace() if e.kind == "request")
        assert kinds["rendered"] == 24 and kinds["stream"] == 0


@pytest.mark.parametrize("protocol", ["wadors", "wado", "https"])
def test_thumbnails_by_each_protocol(client: DicomWebClient, pacs: TestPacs, protocol: str) -> None:
    unc = pacs.data.series("uncompressed")
    with SeriesLoader(client, thumbnail_rendering=protocol) as loader:
        loader.open_study(pacs.data.study_uid).result(WAIT)
        image = loader.request_thumbnail(unc.series_uid, size=(96, 96)).result(WAIT)
        assert image.shape == (96, 96, 4) and image.dtype == np.float32
        assert 0.0 < float(image[..., 0].mean()) < 1.0  # a picture, not a blank


class _DroppingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, cut: int) -> None:
        self.inner, self.cut = inner, cut

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.inner:
            if sent + len(chunk) >= self.cut:
                yield chunk[: max(0, self.cut - sent)]
                raise httpx.ReadError("injected: connection dropped mid-body")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class FaultyTransport(httpx.BaseTransport):
    """A real transport that misbehaves on schedule (by request number, so each kind
    of fault happens whatever the threads do): every 10th request fails (a refused
    connection or a 503, alternately), every 10th has its body dropped half-way,
    every 5th is delayed; the first series stream is always dropped mid-body."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.streams = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            n = next(self.numbers)
            path = request.url.path
            series_stream = path.rstrip("/").split("/")[-2] == "series"  # .../series/{uid}
            first_stream = series_stream and self.streams == 0
            self.streams += series_stream
        if n % 10 == 3 and not first_stream:
            self.injected["fail"] += 1
            if n % 20 == 3:
                raise httpx.ConnectError("injected: connection refused", request=request)
            return httpx.Response(503, request=request, content=b"injected")
        if n % 5 == 1:
            self.injected["delay"] += 1
            time.sleep(0.02)  # a slow network, not synchronisation
        response = self.inner.handle_request(request)
        if first_stream or n % 10 == 7:
            length = int(response.headers.get("content-length") or 0)
            cut = length // 2 if length else 40_000_000
            if response.status_code == 200:
                self.injected["drop"] += 1
                assert isinstance(response.stream, httpx.SyncByteStream)
                return httpx.Response(
                    response.status_code,
                    headers=response.headers,
                    stream=_DroppingStream(response.stream, cut),
                    request=request,
                    extensions=response.extensions,
                )
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def faulty(
    pacs: TestPacs, pacs_server_config: ServerConfig
) -> Iterator[tuple[DicomWebClient, FaultyTransport]]:
    transport = FaultyTransport(
        httpx.HTTPTransport(verify=ssl.create_default_context(cafile=pacs.ca_file))
    )
    with DicomWebClient(
        pacs_server_config, httpx.BasicAuth(*pacs.admin_auth), transport=transport, retry=QUICK
    ) as c:
        yield c, transport


def test_faults_every_slice_still_loads_once_from_the_stream(
    faulty: tuple[DicomWebClient, FaultyTransport],
    pacs: TestPacs,
    source_frames: dict[str, np.ndarray],
) -> None:
    client, transport = faulty
    unc = pacs.data.series("uncompressed")
    with SeriesLoader(client, retry=QUICK) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid)
        assert loader.wait_until_idle(WAIT * 2)
        assert transport.injected["drop"] >= 1
        assert any(e.kind == "retry" and "stream" in e.detail for e in loader.trace())
        assert_each_once(handle, 300)
        assert_identical(handle, source_frames)
        progress = handle.progress()
        assert progress is not None and progress.failed == 0 and progress.errors >= 1


def test_faults_every_slice_still_loads_once_one_request_each(
    faulty: tuple[DicomWebClient, FaultyTransport],
    pacs: TestPacs,
    source_frames: dict[str, np.ndarray],
) -> None:
    client, transport = faulty
    unc = pacs.data.series("uncompressed")
    with SeriesLoader(client, image_rendering="wado", retry=QUICK) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid, cursor=0)
        assert loader.wait_until_idle(WAIT * 2)
        assert min(transport.injected[k] for k in ("fail", "drop", "delay")) >= 10
        assert_each_once(handle, 300)
        assert_identical(handle, source_frames)
        assert handle.progress().failed == 0  # type: ignore[union-attr]
        events = loader.drain()
        ready = Counter(e.index for e in events if isinstance(e, FrameReady))
        assert set(ready.values()) == {1}


def test_reopening_from_the_disk_cache_needs_no_network(
    tmp_path: Path, client: DicomWebClient, pacs: TestPacs, pacs_server_config: ServerConfig,
    source_frames: dict[str, np.ndarray],
) -> None:  # fmt: skip
    unc = pacs.data.series("uncompressed")
    disk = InstanceDiskCache(tmp_path / "instances")
    with SeriesLoader(client, disk_cache=disk) as loader:
        handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid)
        handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
    assert len(disk) == 300

    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("offline", request=request)

    with DicomWebClient(
        pacs_server_config, transport=httpx.MockTransport(offline), retry=QUICK
    ) as cut_off:
        with SeriesLoader(cut_off, disk_cache=disk) as loader:
            handle = loader.open_series(unc.series_uid, study_uid=pacs.data.study_uid)
            handle.opened.result(WAIT)
            assert loader.wait_until_idle(WAIT)
            assert_identical(handle, source_frames)
            assert [e.detail for e in loader.trace() if e.kind == "request"] == ["disk-stream"]


def test_shutdown_mid_stream_leaves_no_thread(client: DicomWebClient, pacs: TestPacs) -> None:
    before = set(threading.enumerate())
    loader = SeriesLoader(client)
    loader.open_series(pacs.data.series("uncompressed").series_uid, study_uid=pacs.data.study_uid)
    events_until(loader, lambda e, _: isinstance(e, FirstImage))
    assert loader.shutdown(timeout=WAIT)
    assert set(threading.enumerate()) <= before
