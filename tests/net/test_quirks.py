"""The client against servers that differ from Orthanc, played by the quirks front.

Each test switches on the quirks of a real server (docs/server-quirks.md says which
and where that is documented) in tests/support/quirks.py, in front of the session's
Orthanc, and checks that the viewer's client still gets everything right — and, from
the front's request log, that it asked the way the quirk needs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

import render
from net import (
    DicomWebClient,
    DicomWebError,
    ServerConfig,
    StudyQuery,
    TooManyResults,
)
from net._fallback import FALLBACK_IN_FLIGHT
from net._multipart import Part
from tests.support.pacs import TestPacs
from tests.support.quirks import QuirksFront

pytestmark = pytest.mark.integration


def _config(url: str, pacs: TestPacs, **changes: object) -> ServerConfig:
    # A fresh id each time: what the client learns about a server is kept per server.
    return ServerConfig(
        name="Quirky",
        url=url,
        auth_type="basic",
        username="zhiva-admin",
        wado_uri_postfix="/zhiva/wado",
        ca_file=pacs.ca_file,
        **changes,  # type: ignore[arg-type]
    )


def _client(url: str, pacs: TestPacs, **changes: object) -> DicomWebClient:
    return DicomWebClient(_config(url, pacs, **changes), httpx.BasicAuth(*pacs.admin_auth))


@pytest.fixture(scope="module")
def direct(pacs: TestPacs) -> Iterator[DicomWebClient]:
    """The test PACS without the front: what the answers should be."""
    with _client(pacs.base_url, pacs) as client:
        yield client


def _sop_of(part: Part) -> str:
    return str(pydicom.dcmread(part.open(), stop_before_pixels=True).SOPInstanceUID)


# --- 1. no series-level retrieve ----------------------------------------------------------


@pytest.mark.parametrize("status", [405, 404])
def test_a_series_without_series_retrieve_comes_instance_by_instance(
    quirks: QuirksFront, pacs: TestPacs, status: int
) -> None:
    series = pacs.data.series("uncompressed")
    config = _config(quirks.base_url, pacs)
    with quirks.switched(series_retrieve=status):
        with DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth)) as client:
            parts = list(client.iter_series_parts(pacs.data.study_uid, series.series_uid))
            assert sorted(_sop_of(p) for p in parts) == sorted(series.sop_uids)
            # Byte-identical to the files Orthanc stored.
            first = {_sop_of(p): p for p in parts}[series.sop_uids[0]]
            stored = pydicom.dcmread(series.paths[0])
            assert pydicom.dcmread(first.open()).PixelData == stored.PixelData
        assert len(quirks.requests("series")) == 1
        assert len(quirks.requests("instance")) == len(series.sop_uids)
        # Concurrent, but bounded.
        assert 2 <= quirks.max_in_flight <= FALLBACK_IN_FLIGHT + 1

        # Remembered for the server: the next series (another client of the same
        # server) goes instance by instance without asking for the series first.
        quirks.clear_log()
        multiframe = pacs.data.series("multiframe")
        with DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth)) as again:
            (ds,) = list(again.iter_series(pacs.data.study_uid, multiframe.series_uid))
        assert ds.SOPInstanceUID == multiframe.sop_uids[0]
        assert quirks.requests("series") == []


def test_a_missing_series_is_still_not_found(quirks: QuirksFront, pacs: TestPacs) -> None:
    with quirks.switched(series_retrieve=404), _client(quirks.base_url, pacs) as client:
        with pytest.raises(DicomWebError) as caught:
            list(client.iter_series_parts(pacs.data.study_uid, "1.2.3.4.5.404"))
        assert caught.value.status_code in (404, None)
        assert client.retrieves_series  # nothing was learned from a series that is not there


def test_static_dicomweb_instances_are_rebuilt_from_metadata_and_frames(
    quirks: QuirksFront, pacs: TestPacs, direct: DicomWebClient
) -> None:
    study = pacs.data.study_uid
    multiframe = pacs.data.series("multiframe")
    j2k = pacs.data.series("j2k")
    with quirks.switched(series_retrieve=404, instance_retrieve=404):
        with _client(quirks.base_url, pacs) as client:
            (rebuilt,) = list(client.iter_series(study, multiframe.series_uid))
            compressed = client.retrieve_instance(study, j2k.series_uid, j2k.sop_uids[5])
    original = direct.retrieve_instance(study, multiframe.series_uid, multiframe.sop_uids[0])
    assert rebuilt.NumberOfFrames == original.NumberOfFrames == multiframe.frames
    assert np.array_equal(rebuilt.pixel_array, original.pixel_array)
    # Frames come as stored (JPEG 2000) and the instance says so.
    assert compressed.file_meta.TransferSyntaxUID == j2k.transfer_syntax
    expected = direct.retrieve_instance(study, j2k.series_uid, j2k.sop_uids[5])
    assert np.array_equal(compressed.pixel_array, expected.pixel_array)


# --- 2. paging ----------------------------------------------------------------------------


def _all_study_uids(client: DicomWebClient) -> list[str]:
    return sorted(s.study_uid for s in client.iter_studies(page_size=1000))


def test_a_capped_limit_pages_with_the_cap(
    quirks: QuirksFront, pacs: TestPacs, direct: DicomWebClient
) -> None:
    with quirks.switched(limit_cap=200), _client(quirks.base_url, pacs) as client:
        found = sorted(s.study_uid for s in client.iter_studies(page_size=500))
        assert found == _all_study_uids(direct)
        limits = [r["query"].get("limit") for r in quirks.requests("qido")]
        assert limits[:2] == ["500", "200"]
        quirks.clear_log()
        client.search_studies(limit=300)  # remembered: straight to the cap
        assert [r["query"]["limit"] for r in quirks.requests("qido")] == ["200"]


def test_no_content_past_the_end_ends_the_results(
    quirks: QuirksFront, pacs: TestPacs, direct: DicomWebClient
) -> None:
    total = len(_all_study_uids(direct))
    with quirks.switched(offset_past_end_204=True), _client(quirks.base_url, pacs) as client:
        # One full page, then an offset at the end: 204, the end of the results.
        found = [s.study_uid for s in client.iter_studies(page_size=total)]
        assert sorted(found) == _all_study_uids(direct)
        assert client.search_studies(limit=5, offset=total + 5) == []
    assert 204 in {r["status"] for r in quirks.requests("qido")}


def test_results_repeated_across_pages_are_shown_once_and_none_is_lost(
    quirks: QuirksFront, pacs: TestPacs, direct: DicomWebClient
) -> None:
    with quirks.switched(page_overlap=2), _client(quirks.base_url, pacs) as client:
        found = [s.study_uid for s in client.iter_studies(page_size=8)]
    assert len(found) == len(set(found))
    assert sorted(found) == _all_study_uids(direct)


def test_a_result_ceiling_is_reported_to_the_user(
    quirks: QuirksFront, pacs: TestPacs, direct: DicomWebClient
) -> None:
    from viewer.app.state import AppState
    from viewer.app.studies_state import StudiesState
    from viewer.app.ui_thread import BackgroundTasks, UiQueue

    with quirks.switched(qido_ceiling=20), _client(quirks.base_url, pacs) as client:
        with pytest.raises(TooManyResults) as caught:
            client.search_studies(limit=10, offset=20)
        assert caught.value.shown == 20

        tasks = BackgroundTasks(UiQueue())
        state = StudiesState(AppState(), tasks, page_size=10)
        state.set_source(
            "Quirky",
            lambda query, limit, offset, fuzzy: client.search_studies(
                query, limit=limit, offset=offset
            ),
            None,
        )
        try:
            state.search()
            assert tasks.wait_until_idle(30)
            while state.has_more:
                state.load_more()
                assert tasks.wait_until_idle(30)
        finally:
            tasks.shutdown()
    # The first 20 records (Orthanc lists one UID twice among pydicom's files).
    shown = len({s.study_uid for s in direct.search_studies(limit=20)})
    assert len(state.rows) == shown and state.status == "ready"
    assert f"Showing the first {shown}" in state.message and "narrow the search" in state.message


# --- 3. include fields ignored or fixed ---------------------------------------------------


def test_what_qido_leaves_out_comes_from_the_series_and_the_metadata(
    quirks: QuirksFront, pacs: TestPacs, direct: DicomWebClient
) -> None:
    study = pacs.data.study_uid
    query = StudyQuery(study_uid=study)
    with (
        quirks.switched(qido_minimal=True),
        _client(quirks.base_url, pacs, qido_supports_include_field=True) as client,
    ):
        (summary,) = client.search_studies(query)
        series = {s.series_uid: s for s in client.search_series(study)}
        stripped = quirks.requests("qido")[0]
    assert "includefield" in stripped["query"]  # asked, and ignored by the front
    (expected,) = direct.search_studies(query)
    assert summary.modalities == expected.modalities == ("CT",)
    assert (summary.series_count, summary.instance_count) == (
        expected.series_count,
        expected.instance_count,
    )
    for want in direct.search_series(study):
        got = series[want.series_uid]
        assert (got.description, got.series_number, got.instance_count, got.modality) == (
            want.description,
            want.series_number,
            want.instance_count,
            want.modality,
        )
        assert got.description  # not a blank column


# --- 4. multipart shapes we send --------------------------------------------------------


@pytest.mark.parametrize(("server_wants", "quotes"), [("quoted", True), ("unquoted", False)])
def test_multipart_quoting_is_a_per_server_option(
    quirks: QuirksFront, pacs: TestPacs, server_wants: str, quotes: bool
) -> None:
    multiframe = pacs.data.series("multiframe")
    study, series, sop = pacs.data.study_uid, multiframe.series_uid, multiframe.sop_uids[0]
    with quirks.switched(accept_quotes=server_wants):
        with _client(quirks.base_url, pacs, multipart_quotes=quotes) as client:
            (frame,) = client.retrieve_frames(study, series, sop, [3])
            assert client.retrieve_instance(study, series, sop).SOPInstanceUID == sop
        accepts = [r["accept"] for r in quirks.requests() if r["kind"] in ("frames", "instance")]
        assert accepts and all(('type="' in a) == quotes for a in accepts)
        assert len(frame.data) == multiframe.rows * multiframe.cols * 2
        with _client(quirks.base_url, pacs, multipart_quotes=not quotes) as wrong:
            with pytest.raises(DicomWebError) as caught:
                wrong.retrieve_frames(study, series, sop, [3])
        assert caught.value.status_code == 400


# --- 5. metadata without bulk data, BulkDataURIs elsewhere --------------------------------


def _palette_file(pacs: TestPacs) -> tuple[str, str, str, Dataset]:
    stored = next(f for f in pacs.data.pydicom_files if f.name == "examples_palette.dcm")
    return stored.study_uid, stored.series_uid, stored.sop_uid, pydicom.dcmread(stored.path)


@pytest.mark.parametrize("bulk", ["", "relative", "wrong-host", "omit"])
def test_palette_tables_arrive_however_the_metadata_names_them(
    quirks: QuirksFront, pacs: TestPacs, bulk: str
) -> None:
    # Orthanc itself names its internal path (/dicom-web/...) behind the proxy ("").
    study, series, sop, original = _palette_file(pacs)
    with quirks.switched(bulk_data=bulk), _client(quirks.base_url, pacs) as client:
        (header,) = client.series_metadata(study, series)
        (frame,) = client.retrieve_frames(study, series, sop, [1])
    for keyword in ("RedPaletteColorLookupTableData", "BluePaletteColorLookupTableData"):
        assert header[keyword].value == original[keyword].value
    fmt = render.pixel_format(header)
    decoded = render.decode_frame_bytes(frame.data, fmt, frame.transfer_syntax_uid)
    info = render.image_info(header, 0)
    rgba = render.render_pixels(decoded, info, None)
    expected = render.render_pixels(
        render.decode_frame(original, 0), render.image_info(original, 0), None
    )
    assert np.array_equal(rgba, expected)
    hosts = {r["path"].split("/studies/")[0] for r in quirks.requests("bulk")}
    if bulk == "omit":
        assert quirks.requests("instance")  # the tables came with the instance
    else:
        assert hosts == {"/dicom-web"}  # fetched through our own root, never elsewhere


def test_metadata_without_pixel_attributes_still_opens_and_decodes(
    quirks: QuirksFront, pacs: TestPacs
) -> None:
    series = pacs.data.series("uncompressed")
    with quirks.switched(bulk_data="omit"), _client(quirks.base_url, pacs) as client:
        headers = client.series_metadata(pacs.data.study_uid, series.series_uid)
        sop = series.sop_uids[10]
        (frame,) = client.retrieve_frames(pacs.data.study_uid, series.series_uid, sop, [1])
    assert len(headers) == len(series.sop_uids)
    header = next(h for h in headers if h.SOPInstanceUID == sop)
    # Marked as an image whose pixels come separately, as a BulkDataURI would say.
    assert header.PixelData == b""
    pixels = render.decode_frame_bytes(
        frame.data, render.pixel_format(header), frame.transfer_syntax_uid
    )
    assert np.array_equal(pixels.pixels, pydicom.dcmread(series.paths[10]).pixel_array)


# --- 6. frames in HTJ2K -----------------------------------------------------------------


def test_htj2k_frames_are_decoded(quirks: QuirksFront, pacs: TestPacs) -> None:
    multiframe = pacs.data.series("multiframe")
    study, series, sop = pacs.data.study_uid, multiframe.series_uid, multiframe.sop_uids[0]
    original = pydicom.dcmread(multiframe.paths[0])
    with quirks.switched(frames_htj2k=True), _client(quirks.base_url, pacs) as client:
        frames = client.retrieve_frames(study, series, sop, [1, 7])
        header = client.instance_metadata(study, series, sop)
    for frame in frames:
        assert frame.media_type == "image/jphc"
        assert frame.transfer_syntax_uid == "1.2.840.10008.1.2.4.201"
        decoded = render.decode_frame_bytes(
            frame.data, render.pixel_format(header), frame.transfer_syntax_uid
        )
        assert np.array_equal(decoded.pixels, original.pixel_array[frame.number - 1])


# --- 7. transfer-syntax negotiation -----------------------------------------------------


def test_a_server_refusing_any_syntax_is_asked_for_the_decodable_list(
    quirks: QuirksFront, pacs: TestPacs
) -> None:
    # AWS-like frames in HTJ2K behind a server that refuses transfer-syntax=*: the
    # explicit list must name HTJ2K, or the frames would come transcoded (or not at all).
    multiframe = pacs.data.series("multiframe")
    study, series, sop = pacs.data.study_uid, multiframe.series_uid, multiframe.sop_uids[0]
    with quirks.switched(frames_htj2k=True, refuse_any_syntax=True):
        with _client(quirks.base_url, pacs) as client:
            (frame,) = client.retrieve_frames(study, series, sop, [2])
            (again,) = client.retrieve_frames(study, series, sop, [4])
        statuses = [
            (r["status"], "transfer-syntax=*" in r["accept"]) for r in quirks.requests("frames")
        ]
    assert frame.media_type == again.media_type == "image/jphc"
    assert statuses == [(406, True), (200, False), (200, False)]  # learned after one 406
    assert "image/jphc" in quirks.requests("frames")[1]["accept"]


def test_a_server_refusing_any_syntax_parameter_gets_none(
    quirks: QuirksFront, pacs: TestPacs, direct: DicomWebClient
) -> None:
    # dcm4chee has answered 406 whenever a transfer-syntax was named.
    series = pacs.data.series("uncompressed")
    study, sop = pacs.data.study_uid, series.sop_uids[3]
    with quirks.switched(refuse_syntax_param=True), _client(quirks.base_url, pacs) as client:
        ds = client.retrieve_instance(study, series.series_uid, sop)
        (frame,) = client.retrieve_frames(study, series.series_uid, sop, [1])
    assert ds.PixelData == direct.retrieve_instance(study, series.series_uid, sop).PixelData
    assert len(frame.data) == series.rows * series.cols * 2
    assert [r["status"] for r in quirks.requests("instance")] == [406, 406, 200]


def test_a_server_defaulting_to_uncompressed_is_asked_for_the_stored_bytes(
    quirks: QuirksFront, pacs: TestPacs
) -> None:
    # Google transcodes to explicit little endian unless transfer-syntax=* is asked for;
    # the client always asks, so JPEG 2000 arrives as stored.
    j2k = pacs.data.series("j2k")
    study, sop = pacs.data.study_uid, j2k.sop_uids[0]
    with quirks.switched(default_uncompressed=True), _client(quirks.base_url, pacs) as client:
        ds = client.retrieve_instance(study, j2k.series_uid, sop)
        (frame,) = client.retrieve_frames(study, j2k.series_uid, sop, [1])
    assert ds.file_meta.TransferSyntaxUID == j2k.transfer_syntax
    assert frame.media_type == "image/jp2"
    stored = pydicom.dcmread(io.BytesIO(j2k.paths[0].read_bytes()))
    assert np.array_equal(ds.pixel_array, stored.pixel_array)
