"""The loader and an answer over a size limit: the slice fails at once, the limit named.

net stops reading an answer past a `SizeLimits` bound and raises `AnswerTooLarge`.
Asking again brings the same answer, so unlike a dropped connection it is not retried:
neither the series stream nor the slice's own request. Against the suite's hostile
HTTPS server (real TLS on loopback) serving a small phantom series whose one instance
is larger than the client's part limit.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pydicom
import pytest

from net import DicomWebClient, RetryPolicy, ServerConfig, SizeLimits
from tests.loader.conftest import WAIT
from tests.support.hostile import Exchange, HostileServer, multipart, reply
from tests.support.pacs import Certificates
from viewer import phantom
from viewer.loader import FrameFailed, SeriesLoader, SliceState

KiB = 1024
PART_LIMIT = 64 * KiB
#: Quick, and more than one attempt: a retried limit error would show as a second request.
QUICK = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.005)
SLICES = 8
BIG = 4  # the instance (in server order) that is larger than the part limit


def _part10(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def oversized_series(
    hostile: HostileServer, small_study: phantom.StudyManifest
) -> Iterator[tuple[str, str, list[str], dict[str, int]]]:
    """The hostile server answers metadata, the series stream and single instances of
    the phantom's first slices; instance `BIG` carries 200 KiB of private padding.
    Yields the study and series UIDs, the SOP UIDs in server order and a count of the
    requests for each path."""
    series = small_study.series["uncompressed"]
    study_uid, series_uid = small_study.study_uid, series.series_uid
    bodies: dict[str, bytes] = {}
    metadata = []
    for n, path in enumerate(series.paths[:SLICES]):
        ds = pydicom.dcmread(path)
        header = pydicom.dcmread(path, stop_before_pixels=True)
        metadata.append(header.to_json_dict())
        if n == BIG:
            block = ds.private_block(0x0009, "ZHIVA TEST PADDING", create=True)
            block.add_new(0x10, "OB", bytes(200 * KiB))
        bodies[str(ds.SOPInstanceUID)] = _part10(ds)
    sops = list(bodies)
    assert len(bodies[sops[BIG]]) > PART_LIMIT > max(len(bodies[s]) for s in sops if s != sops[BIG])
    root = f"/pacs/studies/{study_uid}/series/{series_uid}"
    requests: dict[str, int] = {}

    def counted(path: str) -> None:
        with hostile.lock:
            requests[path] = requests.get(path, 0) + 1

    stream = multipart(bodies.values())
    answer_metadata = reply(
        200, json.dumps(metadata).encode(), {"Content-Type": "application/dicom+json"}
    )

    def series_stream(ex: Exchange) -> None:
        counted(ex.path)
        stream(ex)

    def instance(ex: Exchange) -> None:
        counted(ex.path)
        multipart([bodies[ex.path.rsplit("/", 1)[-1]]])(ex)

    hostile.route(f"{root}/metadata", answer_metadata)
    hostile.route(root, series_stream)
    hostile.route(f"{root}/instances/", instance)
    yield study_uid, series_uid, sops, requests


def test_a_part_over_the_size_limit_fails_its_slice_after_one_request(
    hostile: HostileServer,
    hostile_certificates: Certificates,
    oversized_series: tuple[str, str, list[str], dict[str, int]],
) -> None:
    study_uid, series_uid, sops, requests = oversized_series
    config = ServerConfig(
        name="Hostile", url=f"{hostile.origin}/pacs", ca_file=str(hostile_certificates.ca_file)
    )
    big = sops[BIG]
    root = f"/pacs/studies/{study_uid}/series/{series_uid}"
    with (
        DicomWebClient(config, size_limits=SizeLimits(part_bytes=PART_LIMIT)) as client,
        SeriesLoader(client, retry=QUICK) as loader,
    ):
        handle = loader.open_series(series_uid, study_uid=study_uid, cursor=0)
        layout = handle.opened.result(WAIT)
        assert loader.wait_until_idle(WAIT)
        index = layout.index_of(big)
        assert index is not None and handle.state(index) is SliceState.FAILED
        assert all(handle.state(i) is SliceState.READY for i in range(SLICES) if i != index)
        failed = [e for e in loader.drain() if isinstance(e, FrameFailed)]
        assert [e.index for e in failed] == [index]
        assert "larger than 64 KiB" in failed[0].message and "part_bytes" in failed[0].message
        # Asked for once, failed at once: no retry of the slice, none of the stream.
        assert requests.get(f"{root}/instances/{big}") == 1
        assert requests.get(root) == 1
        assert not [e for e in loader.trace() if e.kind == "retry"]
        progress = handle.progress()
        assert progress.failed == 1 and progress.complete
