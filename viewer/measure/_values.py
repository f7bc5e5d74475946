"""What a measurement measures on its image, and the label that says it.

`ImageData` is what the math needs of one frame: its stored values (as the frame
cache holds them), the modality transform, the calibration and the unit of modality
values. `measure` computes a measurement's values with the pure functions of
`render`; `MeasuredValues.lines` formats them with the calibration basis, so a
label never shows millimetres that are really pixels or detector sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from pydicom.dataset import Dataset

import render
from render import Calibration, ImageCalibration, ModalityTransform, RoiStatistics

from ._model import Measurement

__all__ = ["ImageData", "MeasuredValues", "image_data", "measure"]


@dataclass(frozen=True, slots=True, eq=False)
class ImageData:
    """One frame as measurements need it. `stored` may be None (pixels not loaded)."""

    stored: np.ndarray | None
    transform: ModalityTransform
    calibration: ImageCalibration
    units: str = ""
    padding: tuple[int, int] | None = None


def image_data(header: Dataset, stored: np.ndarray | None, frame: int = 0) -> ImageData:
    """`ImageData` of `frame` of an instance, from its header and its stored values."""
    info = render.image_info(header, frame)
    return ImageData(
        stored=stored,
        transform=info.modality,
        calibration=render.image_calibration(header, frame),
        units=render.modality_units(header),
        padding=info.padding,
    )


@dataclass(frozen=True, slots=True)
class MeasuredValues:
    """The numbers of one measurement; which ones are set depends on its kind."""

    calibration: Calibration
    units: str = ""
    length: float | None = None  # mm, or px uncalibrated
    angle: float | None = None  # degrees
    area: float | None = None  # mm², or px² uncalibrated
    statistics: RoiStatistics | None = None
    value: float | None = None  # a probe's modality value
    text: str = ""

    def lines(self) -> tuple[str, ...]:
        """The label, one line per quantity, with units and the calibration basis."""
        cal = self.calibration
        note = f" ({cal.note})" if cal.note else ""
        unit = f" {self.units}" if self.units else ""
        lines: list[str] = []
        if self.text:
            lines.append(self.text)
        if self.length is not None:
            lines.append(f"{self.length:.1f} {cal.length_unit}{note}")
        if self.angle is not None:
            lines.append(f"{self.angle:.1f}°")
        if self.area is not None:
            if cal.calibrated:
                lines.append(f"Area {self.area:.1f} mm² ({self.area / 100:.2f} cm²){note}")
            else:
                lines.append(f"Area {self.area:.0f} px²")
        stats = self.statistics
        if stats is not None and stats.mean is not None and stats.sd is not None:
            lines.append(f"Mean {stats.mean:.1f} SD {stats.sd:.1f}{unit}")
            lines.append(f"Min {stats.minimum:.0f} Max {stats.maximum:.0f}{unit}")
            lines.append(f"{stats.count} px")
        if self.value is not None:
            lines.append(f"{self.value:.0f}{unit}" if self.units else f"Value {self.value:g}")
        return tuple(lines)


def measure(m: Measurement, data: ImageData) -> MeasuredValues:
    """The values of `m` on its image; statistics only when the pixels are there."""
    points = np.asarray(m.points, dtype=np.float64)
    cal = data.calibration.for_points(points)
    base = MeasuredValues(calibration=cal, units=data.units, text=m.text)
    if m.kind == "length":
        return _with(base, length=render.polyline_length(points, cal))
    if m.kind == "angle":
        return _with(base, angle=render.angle_degrees(points, cal))
    if m.kind == "arrow":
        return base
    stored = data.stored if data.stored is not None and data.stored.ndim == 2 else None
    if m.kind == "probe":
        value = None
        if stored is not None:
            value = render.pixel_value(stored, points[0][0], points[0][1], data.transform)
        return _with(base, value=value)
    if m.kind == "ellipse":
        area = render.ellipse_area(points, cal)
        region = render.ellipse_region(points, stored.shape) if stored is not None else None
    elif m.kind == "rectangle":
        (x0, y0), (x1, y1) = m.points
        area = abs(x1 - x0) * abs(y1 - y0) * cal.scale()[0] * cal.scale()[1]
        region = (
            render.rectangle_region(m.points[0], m.points[1], stored.shape)
            if stored is not None
            else None
        )
    else:
        area = render.polygon_area(points, cal)
        region = render.polygon_region(points, stored.shape) if stored is not None else None
    stats = None
    if stored is not None and region is not None:
        stats = render.roi_statistics(stored, region, data.transform, padding=data.padding)
    return _with(base, area=area, statistics=stats)


def _with(base: MeasuredValues, **values: object) -> MeasuredValues:
    return replace(base, **values)  # type: ignore[arg-type]
