"""Measurements to and from DICOM SR Measurement Reports (TID 1500, PS3.16).

Writing uses highdicom's TID 1500 classes and makes a Comprehensive 3D SR:

* lengths, angles, probes and arrows are TID 1501 Measurement Groups whose one
  measurement (TID 300) is INFERRED FROM an SCOORD (TID 320) SELECTED FROM the image —
  the layout OHIF/Cornerstone write and read;
* ellipse, rectangle and polygon ROIs are TID 1410 Planar ROI groups: the region is an
  SCOORD of the group itself (ELLIPSE, or a closed POLYLINE), and area, mean, SD, min
  and max are measurements of it.

Every group carries a Tracking Identifier ``Zhiva Viewer:<tool>`` and the
measurement's UID as Tracking Unique Identifier, so a measurement keeps its identity
across saves. Free text (an arrow's label) is the group's Finding, coded as OHIF
codes free text, so OHIF shows it.

Reading does not rely on any one writer's habits: it walks the content tree with
pydicom, takes the geometry from the group's SCOORD or, failing that, from the first
measurement's INFERRED FROM SCOORD, and tells the kind from the graphic type, the
number of points and the concept names. A group that cannot be understood is
skipped and counted, never fatal; a dataset that is no measurement report raises
`ReportError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from ._model import ImageRef, Measurement, MeasurementKind, Point, StatedValue
from ._values import MeasuredValues

__all__ = [
    "SR_SOP_CLASSES",
    "TRACKING_PREFIX",
    "ReadReport",
    "ReportError",
    "read_report",
    "write_report",
]

#: The SR storage classes a measurement report can come in (PS3.4 B.5).
SR_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
        "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
        "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
        "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
        "1.2.840.10008.5.1.4.1.1.88.35",  # Extensible SR
    }
)
TRACKING_PREFIX = "Zhiva Viewer"
_TOOL_NAMES: dict[MeasurementKind, str] = {
    "length": "Length",
    "angle": "Angle",
    "ellipse": "EllipticalROI",
    "rectangle": "RectangleROI",
    "polygon": "PlanarFreehandROI",
    "probe": "Probe",
    "arrow": "ArrowAnnotate",
}

LENGTH = Code("410668003", "SCT", "Length")
ANGLE = Code("1483009", "SCT", "Angle")
AREA = Code("42798000", "SCT", "Area")
MEAN = Code("373098007", "SCT", "Mean")
SD = Code("386136009", "SCT", "Standard Deviation")
MINIMUM = Code("255605001", "SCT", "Minimum")
MAXIMUM = Code("56851009", "SCT", "Maximum")
#: What OHIF writes for an annotation without a measurement (arrow, point).
CENTER = Code("111010", "DCM", "Center")
#: OHIF's free-text "code": the meaning is the text.
FREE_TEXT = ("CORNERSTONEFREETEXT", "CORNERSTONEJS")

_MM = Code("mm", "UCUM", "millimeter")
_MM2 = Code("mm2", "UCUM", "square millimeter")
_DEGREE = Code("deg", "UCUM", "degree")
_PX = Code("{px}", "UCUM", "pixels")
_PX2 = Code("{px2}", "UCUM", "square pixels")
_NO_UNITS = Code("1", "UCUM", "no units")
_HU = Code("[hnsf'U]", "UCUM", "Hounsfield unit")

# Concept codes read as lengths/angles/areas, including older SRT ones still written.
_LENGTH_CODES = {("410668003", "SCT"), ("G-D7FE", "SRT"), ("121206", "DCM")}
_ANGLE_CODES = {("1483009", "SCT"), ("285285000", "SCT")}
_AREA_CODES = {("42798000", "SCT"), ("G-A166", "SRT")}


class ReportError(ValueError):
    """The dataset is not a measurement report this viewer can read; says why."""


@dataclass(frozen=True, slots=True)
class ReadReport:
    """A measurement report as read: its identity and the measurements it holds."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    title: str
    content_date: str
    observer: str
    measurements: tuple[Measurement, ...]
    #: (tracking identifier or group number, why) for each group left out.
    skipped: tuple[tuple[str, str], ...] = ()


# --- writing ----------------------------------------------------------------------------


def _unit_code(units: str) -> Code:
    if units == "HU":
        return _HU
    if not units:
        return _NO_UNITS
    return Code(units, "UCUM", units)


def _tracking(m: Measurement) -> Any:
    import highdicom as hd

    return hd.sr.TrackingIdentifier(
        uid=m.uid, identifier=f"{TRACKING_PREFIX}:{_TOOL_NAMES[m.kind]}"
    )


def _finding(m: Measurement) -> Any:
    import highdicom as hd

    if not m.text:
        return None
    return hd.sr.CodedConcept(FREE_TEXT[0], FREE_TEXT[1], m.text[:64])


def _graphic(m: Measurement) -> tuple[str, np.ndarray]:
    points = np.asarray(m.points, dtype=np.float64)
    if m.kind == "ellipse":
        return "ELLIPSE", points
    if m.kind in ("rectangle", "polygon"):
        outline = np.asarray(m.outline(), dtype=np.float64)  # closed: repeats the start
        return "POLYLINE", outline
    if m.kind == "probe":
        return "POINT", points
    return "POLYLINE", points


def _source_image(m: Measurement, multiframe: bool) -> Any:
    import highdicom as hd

    return hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=m.image.sop_class_uid,
        referenced_sop_instance_uid=m.image.sop_instance_uid,
        referenced_frame_numbers=[m.image.frame + 1] if multiframe else None,
    )


def _group(m: Measurement, values: MeasuredValues | None, multiframe: bool) -> Any:
    import highdicom as hd

    graphic_type, data = _graphic(m)
    source = _source_image(m, multiframe)
    calibrated = values is None or values.calibration.calibrated
    if m.is_roi:
        measurements = []
        if values is not None and values.area is not None:
            unit = _MM2 if calibrated else _PX2
            measurements.append(hd.sr.Measurement(name=AREA, value=values.area, unit=unit))
        stats = values.statistics if values is not None else None
        if stats is not None and stats.mean is not None:
            unit = _unit_code(values.units if values is not None else "")
            for name, value in (
                (MEAN, stats.mean),
                (SD, stats.sd),
                (MINIMUM, stats.minimum),
                (MAXIMUM, stats.maximum),
            ):
                if value is not None:
                    measurements.append(hd.sr.Measurement(name=name, value=value, unit=unit))
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(m),
            referenced_region=hd.sr.ImageRegion(
                graphic_type=graphic_type, graphic_data=data, source_image=source
            ),
            finding_type=_finding(m),
            measurements=measurements or None,
        )
    coordinates = [
        hd.sr.CoordinatesForMeasurement(
            graphic_type=graphic_type, graphic_data=data, source_image=source
        )
    ]
    if m.kind == "length":
        value = values.length if values is not None else None
        name, unit = LENGTH, (_MM if calibrated else _PX)
    elif m.kind == "angle":
        value = values.angle if values is not None else None
        name, unit = ANGLE, _DEGREE
    elif m.kind == "probe":
        # The probe is the mean of a one-pixel region: its value, in modality units.
        value = values.value if values is not None else None
        name, unit = MEAN, _unit_code(values.units if values is not None else "")
        if value is None:
            name, unit, value = CENTER, _NO_UNITS, 0.0
    else:
        name, unit, value = CENTER, _NO_UNITS, 0.0
    if value is None or not math.isfinite(value):
        raise ValueError(f"the {m.kind} {m.uid} has no value to save")
    measurement = hd.sr.Measurement(
        name=name, value=float(value), unit=unit, referenced_coordinates=coordinates
    )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(m), finding_type=_finding(m), measurements=[measurement]
    )


def write_report(
    measurements: Sequence[Measurement],
    values: Mapping[str, MeasuredValues],
    evidence: Sequence[Dataset],
    *,
    series_uid: str,
    sop_instance_uid: str,
    series_number: int = 9001,
    instance_number: int = 1,
    observer: str = "",
    previous_versions: Sequence[Dataset] = (),
    manufacturer: str = "Zhiva",
) -> Dataset:
    """A Comprehensive 3D SR (TID 1500) holding `measurements` of one study.

    `values` gives each measurement's values by UID (a probe or ROI without pixels
    may lack some); `evidence` are the headers (no pixel data needed) of the images
    measured, which name the patient and study. `previous_versions` are the reports
    this one replaces (an edited report), listed in the Predecessor Documents Sequence.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if not measurements:
        raise ValueError("there are no measurements to save")
    headers = {str(ds.SOPInstanceUID): ds for ds in evidence}
    missing = {m.image.sop_instance_uid for m in measurements} - set(headers)
    if missing:
        raise ValueError(f"no header for the measured image(s) {sorted(missing)}")
    from render import number_of_frames

    groups = [
        _group(m, values.get(m.uid), number_of_frames(headers[m.image.sop_instance_uid]) > 1)
        for m in measurements
    ]
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="Zhiva Viewer", manufacturer_name=manufacturer
        ),
    )
    person = (
        hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=observer
            ),
        )
        if observer
        else None
    )
    context = hd.sr.ObservationContext(
        observer_person_context=person, observer_device_context=device
    )
    used = [headers[uid] for uid in dict.fromkeys(m.image.sop_instance_uid for m in measurements)]
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=Code("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=groups,
        referenced_images=used,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=used,
        content=report,
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=manufacturer,
        is_complete=True,
        previous_versions=list(previous_versions) or None,
    )
    sr.SeriesDescription = "Measurements (Zhiva Viewer)"
    if any(m.text for m in measurements):
        # A coding scheme not in PS3.16 Section 8 must be identified (PS3.3 C.12.1).
        scheme = Dataset()
        scheme.CodingSchemeDesignator = FREE_TEXT[1]
        scheme.CodingSchemeName = "Cornerstone free-text labels"
        sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


# --- reading ----------------------------------------------------------------------------


def _code(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> tuple[str, str, str]:
    sequence = item.get(keyword)
    if not sequence:
        return ("", "", "")
    code = sequence[0]
    value = str(
        code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue") or ""
    )
    return (
        value,
        str(code.get("CodingSchemeDesignator") or ""),
        str(code.get("CodeMeaning") or ""),
    )


def _children(item: Dataset) -> Sequence[Dataset]:
    return item.get("ContentSequence") or ()


def _image_of(scoord: Dataset) -> tuple[str, str, int] | None:
    """(SOP Class, SOP Instance, 0-based frame) of the IMAGE an SCOORD is selected from."""
    for child in _children(scoord):
        if str(child.get("ValueType") or "") != "IMAGE":
            continue
        refs = child.get("ReferencedSOPSequence") or ()
        if not refs:
            continue
        ref = refs[0]
        frames = ref.get("ReferencedFrameNumber")
        if frames is None or frames == "":
            frame = 1
        elif isinstance(frames, int | str):
            frame = int(frames)
        else:
            frame = int(next(iter(frames)))
        uid = str(ref.get("ReferencedSOPInstanceUID") or "")
        if uid:
            return (str(ref.get("ReferencedSOPClassUID") or ""), uid, max(frame - 1, 0))
    return None


def _points(scoord: Dataset) -> list[Point]:
    data = [float(v) for v in (scoord.get("GraphicData") or ())]
    if len(data) % 2 or not data or not all(math.isfinite(v) for v in data):
        raise ValueError("its SCOORD has no usable Graphic Data")
    return [(data[i], data[i + 1]) for i in range(0, len(data), 2)]


def _closed(points: Sequence[Point]) -> bool:
    return len(points) > 2 and math.dist(points[0], points[-1]) < 1e-3


def _is_rectangle(points: Sequence[Point]) -> bool:
    if len(points) != 5 or not _closed(points):
        return False
    xs = {round(p[0], 3) for p in points}
    ys = {round(p[1], 3) for p in points}
    return len(xs) == 2 and len(ys) == 2


def _kind_and_points(
    graphic_type: str,
    points: list[Point],
    concept: tuple[str, str, str],
    tool: str,
) -> tuple[MeasurementKind, tuple[Point, ...]]:
    key = (concept[0], concept[1])
    if graphic_type in ("POINT", "MULTIPOINT"):
        return "probe", (points[0],)
    if graphic_type == "ELLIPSE":
        if len(points) != 4:
            raise ValueError("its ELLIPSE does not have four points")
        return "ellipse", tuple(points)
    if graphic_type == "CIRCLE":
        if len(points) != 2:
            raise ValueError("its CIRCLE does not have two points")
        (cx, cy), edge = points
        r = math.dist((cx, cy), edge)
        return "ellipse", ((cx - r, cy), (cx + r, cy), (cx, cy - r), (cx, cy + r))
    if graphic_type != "POLYLINE":
        raise ValueError(f"graphic type {graphic_type or 'none'} is not supported")
    if _is_rectangle(points):
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return "rectangle", ((min(xs), min(ys)), (max(xs), max(ys)))
    if _closed(points):
        if len(points) < 4:
            raise ValueError("its closed polyline has fewer than three corners")
        return "polygon", tuple(points[:-1])
    if key in _ANGLE_CODES or tool.endswith("Angle"):
        if len(points) == 4 and math.dist(points[1], points[2]) < 1e-3:
            points = [points[0], points[1], points[3]]  # Cornerstone's vertex twice
        if len(points) == 3:
            return "angle", tuple(points)
        raise ValueError("an angle needs three points")
    if len(points) == 2:
        if "Arrow" in tool or (key == ("111010", "DCM") and "Length" not in tool):
            return "arrow", tuple(points)
        return "length", tuple(points)
    if len(points) >= 3 and (key in _AREA_CODES or "ROI" in tool or "Freehand" in tool):
        return "polygon", tuple(points)
    raise ValueError(f"an open polyline of {len(points)} points is not a tool here")


def _stated(item: Dataset) -> StatedValue | None:
    measured = item.get("MeasuredValueSequence") or ()
    if not measured:
        return None
    value = measured[0].get("NumericValue")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    unit = _code(measured[0], "MeasurementUnitsCodeSequence")
    name = _code(item)[2]
    return StatedValue(name, number, unit[0] if unit[0] not in ("1", "") else "")


def _evidence_series(ds: Dataset) -> dict[str, tuple[str, str]]:
    """SOP Instance UID -> (study, series), from the evidence sequences."""
    found: dict[str, tuple[str, str]] = {}
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(keyword) or ():
            study_uid = str(study.get("StudyInstanceUID") or "")
            for series in study.get("ReferencedSeriesSequence") or ():
                series_uid = str(series.get("SeriesInstanceUID") or "")
                for sop in series.get("ReferencedSOPSequence") or ():
                    found[str(sop.get("ReferencedSOPInstanceUID") or "")] = (study_uid, series_uid)
    return found


def _read_group(
    group: Dataset, report_uid: str, where: Mapping[str, tuple[str, str]], default_study: str
) -> Measurement:
    tool = ""
    uid = ""
    text = ""
    region: Dataset | None = None
    first_concept = ("", "", "")
    inferred: Dataset | None = None
    stated: list[StatedValue] = []
    for item in _children(group):
        value_type = str(item.get("ValueType") or "")
        concept = _code(item)
        if concept[:2] == ("112039", "DCM") and value_type == "TEXT":
            tool = str(item.get("TextValue") or "")
        elif concept[:2] == ("112040", "DCM") and value_type == "UIDREF":
            uid = str(item.get("UID") or "")
        elif concept[:2] == ("121071", "DCM") and value_type == "CODE":
            finding = _code(item, "ConceptCodeSequence")
            if finding[0] == FREE_TEXT[0]:
                text = finding[2]
        elif value_type in ("SCOORD",) and region is None:
            region = item
        elif value_type == "SCOORD3D":
            raise ValueError("3D coordinates (SCOORD3D) are not supported")
        elif value_type == "NUM":
            value = _stated(item)
            if value is not None:
                stated.append(value)
            if inferred is None:
                for child in _children(item):
                    if str(child.get("ValueType") or "") == "SCOORD":
                        inferred, first_concept = child, concept
                        break
    # A measurement's own coordinates first: some writers add a group-level SCOORD
    # that only places the label (Cornerstone's text box).
    scoord = inferred if inferred is not None else region
    if scoord is None:
        raise ValueError("it has no image coordinates (SCOORD)")
    image = _image_of(scoord)
    if image is None:
        raise ValueError("its SCOORD names no image")
    sop_class, sop_uid, frame = image
    kind, points = _kind_and_points(
        str(scoord.get("GraphicType") or "").upper(), _points(scoord), first_concept, tool
    )
    study_uid, series_uid = where.get(sop_uid, (default_study, ""))
    from pydicom.uid import generate_uid

    return Measurement(
        uid=uid or generate_uid(),
        kind=kind,
        image=ImageRef(sop_uid, frame, sop_class, series_uid, study_uid),
        points=points,
        text=text,
        source_report=report_uid,
        locked=True,
        stated=tuple(stated),
    )


def _find(items: Iterable[Dataset], code: tuple[str, str]) -> Dataset | None:
    return next((i for i in items if _code(i)[:2] == code), None)


def read_report(ds: Dataset) -> ReadReport:
    """The measurements of a TID 1500 report (ours, OHIF's, or any conformant writer's)."""
    sop_class = str(ds.get("SOPClassUID") or "")
    if sop_class not in SR_SOP_CLASSES and str(ds.get("Modality") or "") != "SR":
        raise ReportError("This object is not a structured report.")
    title = _code(ds)
    templates = ds.get("ContentTemplateSequence") or ()
    template = str(templates[0].get("TemplateIdentifier") or "") if templates else ""
    if title[:2] != ("126000", "DCM") and template != "1500":
        raise ReportError(
            f"This report ({title[2] or 'untitled'}) is not a measurement report (TID 1500)."
        )
    measurements_container = _find(_children(ds), ("126010", "DCM"))
    groups = [
        g
        for g in (_children(measurements_container) if measurements_container is not None else ())
        if _code(g)[:2] == ("125007", "DCM")
    ]
    report_uid = str(ds.get("SOPInstanceUID") or "")
    where = _evidence_series(ds)
    study_uid = str(ds.get("StudyInstanceUID") or "")
    measurements: list[Measurement] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, group in enumerate(groups, 1):
        try:
            m = _read_group(group, report_uid, where, study_uid)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            skipped.append((f"group {number}", str(exc)))
            continue
        if m.uid in seen:
            skipped.append((f"group {number}", "its tracking UID repeats an earlier group"))
            continue
        seen.add(m.uid)
        measurements.append(m)
    observer = ""
    person = _find(_children(ds), ("121008", "DCM"))
    if person is not None:
        observer = str(person.get("PersonName") or "")
    return ReadReport(
        study_uid=study_uid,
        series_uid=str(ds.get("SeriesInstanceUID") or ""),
        sop_instance_uid=report_uid,
        sop_class_uid=sop_class,
        title=title[2],
        content_date=str(ds.get("ContentDate") or ""),
        observer=observer,
        measurements=tuple(measurements),
        skipped=tuple(skipped),
    )
