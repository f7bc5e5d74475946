"""A measurement report as OHIF writes it, built with highdicom's own TID 1500 API.

What OHIF (Cornerstone3D's SR adapters) writes: TID 1501 groups whose NUM items are
INFERRED FROM an SCOORD SELECTED FROM the image, a tracking identifier
``cornerstone3DTools@^0.1.0:<Tool>``, an Angle as a 4-point Cobb angle with the vertex
twice, free-text labels as a CORNERSTONEFREETEXT Finding. The report is another
tool's, not ours: the SR reader and the viewer are tested against it.

The shapes sit on the phantom's anatomy (viewer/phantom.py) at any image size, so the
same report fits the suite's 512x512 CT and the 256x256 demo: the length from the
vessel (the image centre) to the spine, the angle spine-vessel-sphere (135 degrees),
an ellipse left of the vessel, a probe in the air, an arrow from the vessel, a
triangle. The stated values are worked out from the header's Pixel Spacing.
"""

from __future__ import annotations

import itertools
import math

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

__all__ = ["CS3D", "ohif_report", "ohif_shapes"]

CS3D = "cornerstone3DTools@^0.1.0"
Point = tuple[float, float]
#: Offsets from the image centre in 512ths of the image (so at 512x512 in pixels).
_SHAPES: dict[str, list[Point]] = {
    "Length": [(0.0, 0.0), (0.0, 102.4)],
    "EllipticalROI": [(-86.0, 0.0), (-46.0, 0.0), (-66.0, -20.0), (-66.0, 20.0)],
    "Angle": [(0.0, 102.4), (0.0, 0.0), (0.0, 0.0), (81.92, -81.92)],
    "Probe": [(-252.5, 44.5)],
    "ArrowAnnotate": [(0.0, 0.0), (44.0, -56.0)],
    "PlanarFreehandROI": [(-76.0, -16.0), (-56.0, -16.0), (-66.0, 14.0), (-76.0, -16.0)],
}


def ohif_shapes(rows: int, columns: int) -> dict[str, list[Point]]:
    """Each tool's SCOORD Graphic Data (column, row) in a `rows` x `columns` image."""
    cx, cy = columns / 2, rows / 2
    return {
        tool: [(cx + dx * columns / 512, cy + dy * rows / 512) for dx, dy in offsets]
        for tool, offsets in _SHAPES.items()
    }


def _shoelace(points: list[Point]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(points))) / 2


def ohif_report(header: Dataset) -> Dataset:
    """OHIF's report of the shapes of `ohif_shapes` on the image of `header`."""
    rows, columns = int(header.Rows), int(header.Columns)
    row_mm, column_mm = (float(v) for v in header.PixelSpacing)
    shapes = ohif_shapes(rows, columns)
    source = hd.sr.SourceImageForRegion(str(header.SOPClassUID), str(header.SOPInstanceUID))
    hu = Code("[hnsf'U]", "UCUM", "Hounsfield unit")
    mm, mm2 = Code("mm", "UCUM", "mm"), Code("mm2", "UCUM", "mm2")
    (x0, y0), (x1, y1) = shapes["Length"]
    length_mm = math.hypot((x1 - x0) * column_mm, (y1 - y0) * row_mm)
    (a, b), (c, d) = shapes["EllipticalROI"][:2], shapes["EllipticalROI"][2:]
    ellipse_mm2 = math.pi * math.dist(a, b) / 2 * column_mm * math.dist(c, d) / 2 * row_mm
    triangle_mm2 = _shoelace(shapes["PlanarFreehandROI"]) * column_mm * row_mm

    def coords(kind: str, tool: str) -> list[hd.sr.CoordinatesForMeasurement]:
        return [hd.sr.CoordinatesForMeasurement(kind, np.array(shapes[tool]), source)]

    def group(tool: str, measurements: list[hd.sr.Measurement], label: str = "") -> object:
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"{CS3D}:{tool}"),
            finding_type=hd.sr.CodedConcept("CORNERSTONEFREETEXT", "CORNERSTONEJS", label) if label else None,
            measurements=measurements,
        )  # fmt: skip

    no_units = Code("1", "UCUM", "no units")
    groups = [
        group("Length", [hd.sr.Measurement(
            Code("410668003", "SCT", "Length"), length_mm, mm,
            referenced_coordinates=coords("POLYLINE", "Length"),
        )], label="spine"),
        group("EllipticalROI", [
            hd.sr.Measurement(
                Code("42798000", "SCT", "Area"), ellipse_mm2, mm2,
                referenced_coordinates=coords("ELLIPSE", "EllipticalROI"),
            ),
            # OHIF's own figures: the reader shows them until the pixels are seen.
            hd.sr.Measurement(Code("373098007", "SCT", "Mean"), 0.1, hu),
            hd.sr.Measurement(Code("386136009", "SCT", "Standard Deviation"), 8.0, hu),
        ]),
        group("Angle", [hd.sr.Measurement(
            Code("285285000", "SCT", "Cobb angle"), 135.0, Code("deg", "UCUM", "\u00b0"),
            referenced_coordinates=coords("POLYLINE", "Angle"),
        )]),
        group("Probe", [hd.sr.Measurement(
            Code("111010", "DCM", "Center"), 0.0, no_units,
            referenced_coordinates=coords("POINT", "Probe"),
        )]),
        group("ArrowAnnotate", [hd.sr.Measurement(
            Code("111010", "DCM", "Center"), 0.0, no_units,
            referenced_coordinates=coords("POLYLINE", "ArrowAnnotate"),
        )], label="vessel"),
        group("PlanarFreehandROI", [hd.sr.Measurement(
            Code("42798000", "SCT", "Area"), triangle_mm2, mm2,
            referenced_coordinates=coords("POLYLINE", "PlanarFreehandROI"),
        )]),
    ]  # fmt: skip
    context = hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=Code("121006", "DCM", "Person"),
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name="unknown^unknown"
            ),
        )
    )
    content = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=Code("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=groups,  # type: ignore[arg-type]
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[header], content=content, series_instance_uid=generate_uid(),
        series_number=99, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="OHIF",
    )  # fmt: skip
