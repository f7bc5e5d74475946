"""Measurement reports on the real test PACS: STOW one, then list and WADO it back in a
fresh client (a new session) and get the same measurements.

The session PACS is shared by the suite: the report goes into a study of its own (two
phantom slices copied under a new patient and study), so the phantom study's series
counts stay what other tests expect.
"""

from __future__ import annotations

import copy

import httpx
import numpy as np
import pytest
from pydicom.uid import generate_uid

from net import DicomWebClient, ServerConfig
from tests.measure.conftest import PhantomSlice
from tests.support.pacs import TestPacs
from viewer.measure import (
    ImageRef,
    image_data,
    list_reports,
    load_report,
    measure,
    new_measurement,
    save_report,
    write_report,
)

pytestmark = pytest.mark.integration


def test_stow_then_wado_back_in_a_new_session_gives_the_same_measurements(
    pacs: TestPacs, pacs_server_config: ServerConfig, last_slice: PhantomSlice, tmp_path: object
) -> None:
    image = copy.deepcopy(last_slice.header)
    # Another patient entirely (ID and name): searches for the phantom must not find it.
    image.PatientID = "ZHIVA-SR-TEST"
    image.PatientName = "Reports^Measurement"
    image.StudyInstanceUID = generate_uid()
    image.SeriesInstanceUID = generate_uid()
    image.SOPInstanceUID = generate_uid()
    image.file_meta.MediaStorageSOPInstanceUID = image.SOPInstanceUID
    ref = ImageRef(
        str(image.SOPInstanceUID), 0, str(image.SOPClassUID),
        str(image.SeriesInstanceUID), str(image.StudyInstanceUID),
    )  # fmt: skip
    data = image_data(image, last_slice.stored)
    measurements = [
        new_measurement("length", ref, [(256.0, 256.0), (256.0, 358.4)]),
        new_measurement("ellipse", ref, [(170.0, 256.0), (210.0, 256.0), (190.0, 236.0), (190.0, 276.0)]),
        new_measurement("probe", ref, [(3.5, 300.5)]),
    ]  # fmt: skip
    values = {m.uid: measure(m, data) for m in measurements}
    report = write_report(
        measurements, values, [image],
        series_uid=generate_uid(), sop_instance_uid=generate_uid(),
    )  # fmt: skip
    auth = httpx.BasicAuth(*pacs.admin_auth)
    with DicomWebClient(pacs_server_config, auth) as writer:
        assert writer.store([image]).ok
        saved = save_report(report, client=writer, can_store=True, folder=tmp_path)  # type: ignore[arg-type]
    assert saved.target == "server" and saved.sop_instance_uid == report.SOPInstanceUID

    with DicomWebClient(pacs_server_config, httpx.BasicAuth(*pacs.admin_auth)) as reader:
        listed = list_reports(reader, ref.study_uid)
        assert [r.sop_instance_uid for r in listed] == [str(report.SOPInstanceUID)]
        read = load_report(reader, listed[0])
    assert read.skipped == ()
    assert [m.uid for m in read.measurements] == [m.uid for m in measurements]
    for original, back in zip(measurements, read.measurements, strict=True):
        assert back.kind == original.kind and back.image == original.image
        assert np.allclose(back.points, original.points, atol=1e-4)
        assert measure(back, data).lines() == values[original.uid].lines()
    stated = {s.name: s.value for s in read.measurements[0].stated}
    assert stated["Length"] == pytest.approx(71.68)


def test_a_read_only_user_cannot_store_a_report(
    pacs: TestPacs, pacs_server_config: ServerConfig, last_slice: PhantomSlice
) -> None:
    from net import DicomWebError

    line = new_measurement("length", last_slice.ref, [(10.0, 10.0), (50.0, 10.0)])
    report = write_report(
        [line], {line.uid: measure(line, last_slice.data)}, [last_slice.header],
        series_uid=generate_uid(), sop_instance_uid=generate_uid(),
    )  # fmt: skip
    config = pacs_server_config
    with DicomWebClient(config, httpx.BasicAuth(*pacs.auth("zhiva"))) as client:
        with pytest.raises(DicomWebError):
            save_report(report, client=client, can_store=True, folder=None)  # type: ignore[arg-type]
