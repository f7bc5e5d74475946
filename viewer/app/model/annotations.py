"""What a slice's header adds to a viewport's overlays, worked out once per slice.

The corner text of a series (`series_text`), the position line, the pixel aspect, and
per slice the orientation letters, the pixel spacing behind the scale bar and the
lossy mark (`SliceAnnotations`, cached per header and frame: scrolling back and forth
meets the same slices again). Each item is optional: a header without the attribute
just shows less. Plain Python over pydicom datasets: no GUI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .viewport import SeriesText

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    import render

__all__ = ["AnnotationCache", "SliceAnnotations", "pixel_aspect", "position_text", "series_text"]


def _text(ds: Dataset, keyword: str) -> str:
    from net import dicom_text  # multi-valued text as DICOM writes it (`PR\\US`)

    return dicom_text(ds.get(keyword))


def series_text(ds: Dataset) -> SeriesText:
    """Overlay text of a series from one of its headers."""
    date = _text(ds, "StudyDate")
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    number = _text(ds, "SeriesNumber")
    description = _text(ds, "SeriesDescription")
    return SeriesText(
        patient=_text(ds, "PatientName").replace("^", " ").strip(),
        patient_id=_text(ds, "PatientID"),
        study=_text(ds, "StudyDescription"),
        study_date=date,
        series=" ".join(p for p in (f"#{number}" if number else "", description) if p),
        modality=_text(ds, "Modality"),
    )


def pixel_aspect(ds: Dataset | None) -> float:
    """Row spacing over column spacing (1 when unknown)."""
    spacing: Any = ds.get("PixelSpacing") if ds is not None else None
    try:
        row, column = float(spacing[0]), float(spacing[1])
    except (TypeError, ValueError, IndexError):
        return 1.0
    return row / column if row > 0 and column > 0 else 1.0


def position_text(ds: Dataset | None) -> str:
    """The slice's position for the overlays, empty when unknown.

    Along the patient axis the slice is across (its normal's largest component):
    "Z 12.5 mm" on an axial slice, "Y -30.0 mm" on a coronal one, "X 40.2 mm" on a
    sagittal one (LPS, PS3.3 C.7.6.2.1.1): the coordinate every pixel of that slice
    shares. Without an orientation, Slice Location (a vendor's axial position).
    """
    if ds is None:
        return ""
    position, orientation = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    try:
        row = [float(v) for v in orientation[:3]]
        column = [float(v) for v in orientation[3:6]]
        point = [float(v) for v in position[:3]]
    except (TypeError, ValueError, IndexError):
        pass
    else:
        normal = [
            row[1] * column[2] - row[2] * column[1],
            row[2] * column[0] - row[0] * column[2],
            row[0] * column[1] - row[1] * column[0],
        ]
        if len(point) == 3 and any(normal):
            axis = max(range(3), key=lambda n: abs(normal[n]))
            return f"{'XYZ'[axis]} {point[axis]:.1f} mm"
    location = ds.get("SliceLocation")
    if location is not None:
        try:
            return f"Z {float(location):.1f} mm"
        except (TypeError, ValueError):
            return ""
    try:
        return f"Z {float(position[2]):.1f} mm"
    except (TypeError, ValueError, IndexError):
        return ""


@dataclass(frozen=True, slots=True)
class SliceAnnotations:
    """Orientation letters, pixel spacing (mm; columns, rows) and the lossy mark."""

    edges: render.EdgeLabels | None = None
    spacing: tuple[float, float] | None = None
    lossy: str | None = None

    @classmethod
    def of(cls, header: Dataset, frame: int) -> SliceAnnotations:
        import render

        try:
            edges = render.patient_orientation_labels(header, frame)
        except Exception:
            edges = None
        try:
            found = render.scale_pixel_spacing(header, frame)
            spacing = None if found is None else (found.column_spacing, found.row_spacing)
        except Exception:
            spacing = None
        try:
            status = render.lossy_status(header)
            lossy = (status.reason or "LOSSY") if status.lossy else None
        except Exception:
            lossy = None
        return cls(edges, spacing, lossy)


class AnnotationCache:
    """`SliceAnnotations` by (header, frame) for one source (cleared when it changes;
    the headers live as long as the source's layout)."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, int], tuple[Dataset, SliceAnnotations]] = {}

    def get(self, header: Dataset, frame: int) -> SliceAnnotations:
        key = (id(header), frame)
        known = self._known.get(key)
        if known is not None and known[0] is header:
            return known[1]
        annotations = SliceAnnotations.of(header, frame)
        self._known[key] = (header, annotations)
        return annotations

    def clear(self) -> None:
        self._known.clear()
