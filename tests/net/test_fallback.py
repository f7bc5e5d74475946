"""The client's quirk handling without a network: Accept ladder, paging, BulkDataURIs,
instances rebuilt from frames, the concurrent fetch (fault injection: MockTransport)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

import render
from net import DicomWebClient, ServerConfig, ServerError
from net._fallback import (
    concurrently,
    lacks_palette,
    mark_pixel_data,
    pages,
    part10_from_frames,
    read_ahead,
    resolve_bulk_data_uri,
)
from net._models import Frame
from net._quirks import DECODABLE_SYNTAXES, accept_header, syntax_of_media_type

ROOT = "https://pacs.example.org/dicom-web"


def _client(
    handler: Callable[[httpx.Request], httpx.Response], **changes: object
) -> DicomWebClient:
    config = ServerConfig(name="Mock", url=ROOT, **changes)  # type: ignore[arg-type]
    return DicomWebClient(config, transport=httpx.MockTransport(handler))


# --- the Accept ladder ----------------------------------------------------------------


def test_the_accept_ladder_and_its_quoting() -> None:
    assert (
        accept_header("dicom", 0, quoted=True)
        == 'multipart/related; type="application/dicom"; transfer-syntax=*'
    )
    assert accept_header("frames", 0, quoted=False) == (
        "multipart/related; type=application/octet-stream; transfer-syntax=*"
    )
    assert accept_header("dicom", 2, quoted=False) == "multipart/related; type=application/dicom"
    listed = accept_header("frames", 1, quoted=True).split(", ")
    assert (
        listed[0] == 'multipart/related; type="image/jphc"; transfer-syntax=1.2.840.10008.1.2.4.201'
    )
    # Explicit little endian last: servers that take the last range never transcode.
    assert listed[-1].endswith(
        'type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'
    )
    assert "transfer-syntax=*" not in accept_header("dicom", 1, quoted=True)


def test_htj2k_is_listed_only_when_the_list_allows_it() -> None:
    without = [ts for ts in DECODABLE_SYNTAXES if not ts.startswith("1.2.840.10008.1.2.4.20")]
    assert "image/jphc" not in accept_header("frames", 1, quoted=True, syntaxes=without)


def test_every_listed_syntax_has_a_decoder_here() -> None:
    # What the client offers a server, the viewer must be able to show.
    for ts in DECODABLE_SYNTAXES:
        status = render.decoder_status(ts)
        assert status.available, f"{ts}: {status.install_hint}"


@pytest.mark.parametrize(
    ("media_type", "syntax"),
    [
        ("image/jphc", "1.2.840.10008.1.2.4.201"),
        ("image/jph", "1.2.840.10008.1.2.4.201"),
        ("image/j2c", "1.2.840.10008.1.2.4.90"),
        ("IMAGE/JP2", "1.2.840.10008.1.2.4.90"),
        ("application/octet-stream", "1.2.840.10008.1.2.1"),
        ("image/unknown", ""),
    ],
)
def test_a_part_naming_only_its_media_type_gets_a_syntax(media_type: str, syntax: str) -> None:
    assert syntax_of_media_type(media_type) == syntax


def test_406_steps_down_the_ladder_once_per_server() -> None:
    accepts: list[str] = []
    boundary = "b0"
    body = f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n\x01\x02\r\n--{boundary}--\r\n"

    def handler(request: httpx.Request) -> httpx.Response:
        accept = request.headers["accept"]
        accepts.append(accept)
        if "transfer-syntax" in accept:
            return httpx.Response(406)
        return httpx.Response(
            200,
            stream=httpx.ByteStream(body.encode()),  # streamed, as the client reads it
            headers={
                "Content-Type": f"multipart/related; type=application/octet-stream; boundary={boundary}"
            },
        )

    with _client(handler) as client:
        (frame,) = client.retrieve_frames("1", "2", "3", [1])
        client.retrieve_frames("1", "2", "3", [2])
    assert frame.data == b"\x01\x02" and frame.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert [("*" in a, "transfer-syntax" in a) for a in accepts] == [
        (True, True),
        (False, True),
        (False, False),
        (False, False),  # remembered: the second frame asks the way that worked
    ]


def test_stow_content_type_follows_the_quoting_option() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["content-type"])
        return httpx.Response(200, json={}, headers={"Content-Type": "application/dicom+json"})

    for quotes in (True, False):
        with _client(handler, multipart_quotes=quotes) as client:
            client.store([b"DICM"])
    assert seen[0].startswith('multipart/related; type="application/dicom"; boundary="zhiva-')
    assert seen[1].startswith("multipart/related; type=application/dicom; boundary=zhiva-")


# --- paging -----------------------------------------------------------------------------


def test_pages_drop_repeats_lose_nothing_and_stop_at_the_end() -> None:
    items = [f"u{i}" for i in range(23)]
    asked: list[tuple[int, int]] = []

    def fetch(limit: int, offset: int) -> list[str]:
        asked.append((limit, offset))
        start = max(0, offset - 2)  # every page after the first repeats two results
        return items[start : start + limit]

    assert list(pages(fetch, key=str, page_size=lambda: 5)) == items
    assert asked[-1][1] < len(items) + 5  # ended by a short page, not by looping


def test_pages_stop_when_offset_is_ignored_or_the_answer_is_empty() -> None:
    calls = 0

    def same_page(limit: int, offset: int) -> list[str]:
        nonlocal calls
        calls += 1
        return ["a", "b"]

    assert list(pages(same_page, key=str, page_size=lambda: 2)) == ["a", "b"]
    assert calls == 2
    assert list(pages(lambda limit, offset: [], key=str, page_size=lambda: 2)) == []


def test_pages_follow_a_cap_learned_on_the_first_page() -> None:
    cap: list[int] = []
    items = [str(i) for i in range(7)]

    def fetch(limit: int, offset: int) -> list[str]:
        if limit > 3:
            cap.append(3)  # the client learned the server's cap while answering
            limit = 3
        return items[offset : offset + limit]

    assert list(pages(fetch, key=str, page_size=lambda: cap[0] if cap else 10)) == items


def test_a_refused_limit_is_asked_again_with_the_cap() -> None:
    limits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        limit = request.url.params["limit"]
        limits.append(limit)
        if int(limit) > 200:
            return httpx.Response(400, json={"message": "limit must be 1..200"})
        return httpx.Response(200, json=[], headers={"Content-Type": "application/dicom+json"})

    with _client(handler) as client:
        assert client.search_studies(limit=500) == []
        client.search_studies(limit=300)
    assert limits == ["500", "200", "200"]


def test_a_series_is_listed_by_pages_that_double_then_the_full_size() -> None:
    study, series = "1.2.3", "1.2.3.4"
    sops = [f"1.2.3.4.{i}" for i in range(500)]
    listed: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/instances"):
            limit, offset = (
                int(request.url.params["limit"]),
                int(request.url.params.get("offset", "0")),
            )
            listed.append((limit, offset))
            page = [
                {"00080018": {"vr": "UI", "Value": [sop]}, "00200013": {"vr": "IS", "Value": [i]}}
                for i, sop in enumerate(sops[offset : offset + limit], offset + 1)
            ]
            return httpx.Response(
                200, json=page, headers={"Content-Type": "application/dicom+json"}
            )
        return httpx.Response(404)

    with _client(handler) as client:
        got = list(client._listed_instances(study, series))
    assert got == sops
    assert listed == [(32, 0), (64, 32), (128, 96), (200, 224), (200, 424)]


def test_read_ahead_runs_on_its_own_thread_and_raises_where_the_items_stop() -> None:
    threads: list[str] = []
    second = threading.Event()

    def items() -> Iterator[int]:
        threads.append(threading.current_thread().name)
        yield 1
        second.set()  # runs before the consumer asks for the second item
        yield 2
        raise ServerError("listing broke")

    ahead = read_ahead(items())
    assert next(ahead) == 1
    assert second.wait(5)
    assert next(ahead) == 2
    with pytest.raises(ServerError, match="listing broke"):
        next(ahead)
    assert threads and threads[0] != threading.current_thread().name


def test_closing_read_ahead_stops_its_thread() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1_000_000):
            taken.append(i)
            yield i

    ahead = read_ahead(items(), name="zhiva-listing-test")
    next(ahead)
    ahead.close()
    for thread in threading.enumerate():
        if thread.name == "zhiva-listing-test":
            thread.join(5)
    assert not any(t.name == "zhiva-listing-test" for t in threading.enumerate())
    assert len(taken) < 1_000_000


# --- BulkDataURIs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("instances/9/bulk/7fe00010", f"{ROOT}/studies/1/series/2/instances/9/bulk/7fe00010"),
        ("../../bulk/x", f"{ROOT}/studies/1/bulk/x"),
        (f"{ROOT}/studies/1/series/2/bulk", f"{ROOT}/studies/1/series/2/bulk"),
        # Orthanc behind a proxy: its own path; another host entirely: rebuilt from ours.
        ("https://pacs.example.org/internal/studies/1/bulk/x", f"{ROOT}/studies/1/bulk/x"),
        ("http://10.0.0.5:8042/dicom-web/studies/1/bulk/x?a=1", f"{ROOT}/studies/1/bulk/x?a=1"),
        ("http://10.0.0.5:8042/blobs/1234", None),
    ],
)
def test_bulk_data_uris_are_only_followed_under_our_root(uri: str, expected: str | None) -> None:
    request = f"{ROOT}/studies/1/series/2/metadata"
    assert resolve_bulk_data_uri(uri, request, ROOT) == expected


def test_metadata_of_an_image_without_pixel_data_is_marked_as_one() -> None:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.BitsAllocated = 4, 4, 16
    mark_pixel_data(ds)
    assert ds["PixelData"].VR == "OW" and ds.PixelData == b""
    report = Dataset()
    mark_pixel_data(report)
    assert "PixelData" not in report
    ds.PhotometricInterpretation = "PALETTE COLOR"
    assert lacks_palette(ds)


# --- instances rebuilt from frames ------------------------------------------------------


def _header(frames: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = 8, 6
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.NumberOfFrames = frames
    ds.add_new("PixelData", "OW", b"")  # as metadata gives it
    return ds


def test_an_instance_is_rebuilt_from_native_frames() -> None:
    pixels = np.arange(3 * 8 * 6, dtype="<i2").reshape(3, 8, 6) - 50
    frames = [
        Frame(number=i + 1, data=pixels[i].tobytes(), media_type="application/octet-stream",
              transfer_syntax_uid=ExplicitVRLittleEndian)
        for i in range(3)
    ]  # fmt: skip
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(part10_from_frames(_header(3), frames)))
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(ds.pixel_array, pixels)


def test_an_instance_is_rebuilt_from_compressed_frames() -> None:
    import imagecodecs

    pixels = (np.arange(8 * 6, dtype="<i2").reshape(8, 6) * 37) - 800
    frame = Frame(
        number=1, data=imagecodecs.jpeg2k_encode(pixels, level=0), media_type="image/jp2",
        transfer_syntax_uid=JPEG2000Lossless,
    )  # fmt: skip
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(part10_from_frames(_header(1), [frame])))
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert np.array_equal(ds.pixel_array, pixels)
    mixed = [frame, Frame(number=2, data=b"", media_type="application/octet-stream")]
    with pytest.raises(ValueError, match="different transfer syntaxes"):
        part10_from_frames(_header(2), mixed)


# --- concurrent fetch -------------------------------------------------------------------


def test_concurrently_keeps_a_bounded_number_in_flight_and_yields_as_they_finish() -> None:
    lock = threading.Lock()
    running = peak = 0
    release = {i: threading.Event() for i in range(10)}

    def fetch(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release[i].wait(5)
        with lock:
            running -= 1
        return i

    # Released in reverse within each window: arrival order is what comes out.
    results = concurrently(range(10), fetch, in_flight=3)
    release[2].set()
    first = next(results)
    for event in release.values():
        event.set()
    rest = list(results)
    assert first == 2 and sorted([first, *rest]) == list(range(10))
    assert peak == 3


def test_concurrently_raises_the_first_failure_and_cancels_the_rest() -> None:
    started: list[int] = []

    def fetch(i: int) -> int:
        started.append(i)
        if i == 1:
            raise ServerError("boom")
        time.sleep(0.01)  # not synchronisation: only keeps the others busy a moment
        return i

    with pytest.raises(ServerError):
        list(concurrently(range(50), fetch, in_flight=2))
    assert len(started) < 50


def test_closing_concurrently_stops_what_has_not_started() -> None:
    started: list[int] = []
    gate = threading.Event()

    def fetch(i: int) -> int:
        started.append(i)
        gate.wait(5)
        return i

    results = concurrently(range(100), fetch, in_flight=2)
    gate.set()
    next(results)
    results.close()
    assert len(started) <= 6


@pytest.mark.parametrize(
    ("uid", "safe"),
    [("1.2.840.113619.2", True), ("d09e8215-e1e1-4c7a", True), ("../../etc", False),
     ("1.2\x08", False), ("1.2/3", False), ("", False)],
)  # fmt: skip
def test_only_uids_that_fit_a_url_path_are_asked_for(uid: str, safe: bool) -> None:
    from net._fallback import url_safe_uid

    assert url_safe_uid(uid) is safe
