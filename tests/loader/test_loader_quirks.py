"""The series loader on servers without series-level retrieve, played by the quirks
front: the client fetches instance by instance (or rebuilds them from frames) behind
the same `iter_series_parts`, so the loader sees one stream and needs no change."""

from __future__ import annotations

import httpx
import numpy as np
import pydicom
import pytest

from net import DicomWebClient, ServerConfig
from tests.loader.conftest import WAIT, ready_indices
from tests.support.pacs import TestPacs
from tests.support.quirks import QuirksFront
from viewer.loader import SeriesLoader

pytestmark = pytest.mark.integration


def _client(quirks: QuirksFront, pacs: TestPacs) -> DicomWebClient:
    config = ServerConfig(
        name="AWS-like", url=quirks.base_url, auth_type="basic", username="zhiva-admin",
        ca_file=pacs.ca_file,
    )  # fmt: skip
    return DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth))


@pytest.mark.parametrize(
    ("variant", "switches"),
    [
        ("uncompressed", {"series_retrieve": 405}),  # AWS HealthImaging
        ("multiframe", {"series_retrieve": 404, "instance_retrieve": 404}),  # static DICOMweb
    ],
)
def test_a_series_opens_whole_on_a_server_without_series_retrieve(
    quirks: QuirksFront, pacs: TestPacs, variant: str, switches: dict[str, int]
) -> None:
    series = pacs.data.series(variant)  # type: ignore[arg-type]
    stored = {str(ds.SOPInstanceUID): ds.pixel_array for ds in map(pydicom.dcmread, series.paths)}
    with quirks.switched(**switches), _client(quirks, pacs) as client:
        with SeriesLoader(client) as loader:
            handle = loader.open_series(series.series_uid, study_uid=pacs.data.study_uid)
            layout = handle.opened.result(WAIT * 2)
            assert loader.wait_until_idle(WAIT * 2)
            assert sorted(ready_indices(handle)) == list(range(len(layout)))
            for index in range(0, len(layout), 13):
                ref = layout.slices[index]
                frame = handle.frame(index)
                assert frame is not None
                want = stored[ref.sop_uid]
                assert np.array_equal(frame.pixels, want[ref.frame] if want.ndim == 3 else want)
            assert next(e.detail for e in loader.trace() if e.kind == "request") == "stream"
        assert quirks.requests("series")  # refused once, then instance by instance
        assert quirks.requests("frames" if "instance_retrieve" in switches else "instance")
