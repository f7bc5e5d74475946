"""TID 1500 reports: ours round-trip, validate (highdicom, dciodvfy), and OHIF's are read."""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from tests.measure.conftest import PhantomSlice
from tests.support.ohif_report import ohif_report
from viewer.measure import (
    Measurement,
    ReportError,
    ellipse_from_box,
    may_store,
    measure,
    new_measurement,
    read_report,
    save_report,
    write_report,
)


def _tools(s: PhantomSlice) -> list[Measurement]:
    ref = s.ref
    return [
        new_measurement("length", ref, [(256.0, 256.0), (256.0, 358.4)]),
        new_measurement("angle", ref, [(256.0, 358.4), (256.0, 256.0), (337.92, 174.08)]),
        new_measurement("ellipse", ref, ellipse_from_box((170.25, 236.5), (210.75, 276.0))),
        new_measurement("rectangle", ref, [(250.0, 250.0), (262.5, 262.5)]),
        new_measurement("polygon", ref, [(180.0, 240.0), (200.0, 240.0), (190.0, 270.0)]),
        new_measurement("probe", ref, [(3.5, 300.5)]),
        new_measurement("arrow", ref, [(256.0, 256.0), (300.0, 200.0)], text="contrast vessel"),
    ]


def _report(s: PhantomSlice, measurements: list[Measurement]) -> Dataset:
    values = {m.uid: measure(m, s.data) for m in measurements}
    return write_report(
        measurements, values, [s.header],
        series_uid=generate_uid(), sop_instance_uid=generate_uid(), observer="Doe^Jane",
    )  # fmt: skip


def _reread(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def test_our_report_round_trips_coordinates_and_values(middle_slice: PhantomSlice) -> None:
    tools = _tools(middle_slice)
    report = read_report(_reread(_report(middle_slice, tools)))
    assert report.skipped == ()
    assert report.observer == "Doe^Jane"
    assert report.study_uid == middle_slice.ref.study_uid
    assert [m.kind for m in report.measurements] == [m.kind for m in tools]
    for original, read in zip(tools, report.measurements, strict=True):
        assert read.uid == original.uid  # the tracking UID
        assert read.image == original.image  # series and study from the evidence
        assert read.locked and read.source_report == report.sop_instance_uid
        # Graphic Data is FL (float32): exact to its precision.
        assert np.allclose(read.points, original.points, atol=1e-4, rtol=1e-6)
        assert read.text == original.text
        again = measure(read, middle_slice.data)
        first = measure(original, middle_slice.data)
        assert again.lines() == first.lines()
    stated = {s.name: s.value for s in report.measurements[2].stated}
    stats = measure(tools[2], middle_slice.data).statistics
    assert stats is not None and stats.mean is not None
    assert stated["Mean"] == pytest.approx(stats.mean)
    assert stated["Area"] == pytest.approx(measure(tools[2], middle_slice.data).area)
    assert {s.name: s.value for s in report.measurements[0].stated}["Length"] == pytest.approx(
        71.68
    )


def test_highdicom_reads_our_report_back(middle_slice: PhantomSlice, tmp_path: Path) -> None:
    path = tmp_path / "sr.dcm"
    _report(middle_slice, _tools(middle_slice)).save_as(path, enforce_file_format=True)
    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    planar = sr.content.get_planar_roi_measurement_groups()
    assert len(planar) == 3  # ellipse, rectangle, polygon (TID 1410)
    assert [g.roi.GraphicType for g in planar] == ["ELLIPSE", "POLYLINE", "POLYLINE"]
    image_groups = sr.content.get_image_measurement_groups()
    assert len(image_groups) == 4  # length, angle, probe, arrow (TID 1501)
    length = image_groups[0].get_measurements(name=Code("410668003", "SCT", "Length"))[0]
    assert length.value == pytest.approx(71.68)
    assert length.unit.value == "mm"
    assert str(sr.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID) == (
        middle_slice.ref.study_uid
    )


def test_dciodvfy_finds_no_errors(middle_slice: PhantomSlice, tmp_path: Path) -> None:
    dciodvfy = shutil.which("dciodvfy")
    assert dciodvfy, "dciodvfy is missing: scripts/bootstrap.sh test installs dicom3tools"
    path = tmp_path / "sr.dcm"
    _report(middle_slice, _tools(middle_slice)).save_as(path, enforce_file_format=True)
    result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert "Comprehensive3DSR" in output
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert errors == []


def test_an_edited_report_names_the_one_it_replaces(middle_slice: PhantomSlice) -> None:
    first = _reread(_report(middle_slice, _tools(middle_slice)[:1]))
    read = read_report(first).measurements[0]
    edited = read.moved(1.0, 0.0)
    second = write_report(
        [edited], {edited.uid: measure(edited, middle_slice.data)}, [middle_slice.header],
        series_uid=generate_uid(), sop_instance_uid=generate_uid(), previous_versions=[first],
    )  # fmt: skip
    predecessor = second.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert predecessor.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID
    assert read_report(_reread(second)).measurements[0].uid == read.uid  # same finding


def test_writing_refuses_what_it_cannot_reference(middle_slice: PhantomSlice) -> None:
    with pytest.raises(ValueError, match="no measurements"):
        write_report([], {}, [middle_slice.header], series_uid="1.2", sop_instance_uid="1.3")
    line = _tools(middle_slice)[0]
    with pytest.raises(ValueError, match="no header"):
        write_report([line], {}, [], series_uid="1.2", sop_instance_uid="1.3")


# --- a report made by another tool: OHIF's layout, built with highdicom (tests/support) --


def test_an_ohif_style_report_is_read_into_our_model(middle_slice: PhantomSlice) -> None:
    report = read_report(_reread(ohif_report(middle_slice.header)))
    assert report.skipped == ()
    kinds = [m.kind for m in report.measurements]
    assert kinds == ["length", "ellipse", "angle", "probe", "arrow", "polygon"]
    length, ellipse, angle, probe, arrow, polygon = report.measurements
    assert all(m.image == middle_slice.ref for m in report.measurements)
    assert length.text == "spine" and arrow.text == "vessel"
    assert measure(length, middle_slice.data).length == pytest.approx(71.68, abs=1e-3)
    assert measure(angle, middle_slice.data).angle == pytest.approx(135.0, abs=1e-3)
    assert angle.points[1] == pytest.approx((256.0, 256.0))  # the vertex, once
    stats = measure(ellipse, middle_slice.data).statistics
    assert stats is not None and stats.count == pytest.approx(math.pi * 20 * 20, rel=0.02)
    assert {s.name for s in ellipse.stated} == {"Area", "Mean", "Standard Deviation"}
    assert measure(probe, middle_slice.data).value == -1000.0
    assert len(polygon.points) == 3
    assert all(m.locked for m in report.measurements)


def test_not_a_measurement_report_is_a_clear_error(middle_slice: PhantomSlice) -> None:
    with pytest.raises(ReportError, match="not a structured report"):
        read_report(middle_slice.header)
    sr = _reread(ohif_report(middle_slice.header))
    sr.ConceptNameCodeSequence[0].CodeValue = "18748-4"
    sr.ConceptNameCodeSequence[0].CodingSchemeDesignator = "LN"
    del sr.ContentTemplateSequence
    with pytest.raises(ReportError, match="not a measurement report"):
        read_report(sr)


def test_broken_groups_are_skipped_with_a_reason(middle_slice: PhantomSlice) -> None:
    sr = _reread(_report(middle_slice, _tools(middle_slice)[:3]))
    groups = sr.ContentSequence[-1].ContentSequence
    groups[0].ContentSequence[-1].ContentSequence[0].GraphicData = [1.0, 2.0, 3.0]
    del groups[1].ContentSequence[-1].ContentSequence[0].ContentSequence
    report = read_report(sr)
    assert [m.kind for m in report.measurements] == ["ellipse"]
    assert [why for _, why in report.skipped] == [
        "its SCOORD has no usable Graphic Data",
        "its SCOORD names no image",
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_fuzzed_reports_never_raise_anything_but_report_error(
    middle_slice: PhantomSlice, data: st.DataObject
) -> None:
    sr = _reread(_report(middle_slice, _tools(middle_slice)[:4]))
    items = []

    def walk(ds: Dataset) -> None:
        for element in ds:
            items.append((ds, element.keyword))
            if element.VR == "SQ":
                for child in element.value:
                    walk(child)

    walk(sr)
    for _ in range(data.draw(st.integers(1, 4))):
        ds, keyword = items[data.draw(st.integers(0, len(items) - 1))]
        if not keyword or keyword not in ds:
            continue
        action = data.draw(st.sampled_from(["delete", "empty", "junk"]))
        if action == "delete":
            delattr(ds, keyword)
        elif action == "empty":
            try:
                setattr(ds, keyword, None if ds[keyword].VR != "SQ" else [])
            except Exception:
                continue
        else:
            try:
                setattr(
                    ds, keyword, "x" if ds[keyword].VR in ("LO", "SH", "CS", "UT", "UI") else None
                )
            except Exception:
                continue
    with contextlib.suppress(ReportError):
        read_report(sr)


def test_saving_without_store_rights_writes_a_file(
    middle_slice: PhantomSlice, tmp_path: Path
) -> None:
    from net import ServerConfig

    config = ServerConfig(name="x", url="https://pacs.example/dicom-web", can_store=False)
    assert not may_store(config) and not may_store(None)
    assert may_store(ServerConfig(name="x", url="https://pacs.example/x", can_store=True))

    class ReadOnlyToken:
        can_edit = False

    can = ServerConfig(name="x", url="https://pacs.example/x", can_store=True)
    assert not may_store(can, ReadOnlyToken())
    report = _report(middle_slice, _tools(middle_slice)[:2])
    result = save_report(report, client=None, can_store=False, folder=tmp_path / "reports")
    assert result.target == "file"
    path = Path(result.where)
    assert path.name == f"SR_{report.SOPInstanceUID}.dcm" and "Phantom" not in path.name
    assert read_report(pydicom.dcmread(path)).measurements[0].kind == "length"
    assert not list(path.parent.glob("*.partial"))
