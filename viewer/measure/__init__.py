"""Measurements and annotations: the model, their values, and DICOM SR reports.

Plain Python (no dearpygui): the viewer draws what `MeasurementSet` holds and turns
mouse and keys into its calls; `measure` computes values with `render`'s pure math;
`write_report` / `read_report` turn measurements into TID 1500 Measurement Reports
and back; `reports` lists, loads and saves them on a server or on disk.
"""

from ._model import (
    KINDS,
    Hit,
    ImageRef,
    Measurement,
    MeasurementKind,
    MeasurementSet,
    Point,
    StatedValue,
    ellipse_from_box,
    new_measurement,
)
from ._reports import (
    ReportInfo,
    ReportSource,
    ReportStore,
    SaveResult,
    list_reports,
    load_report,
    may_store,
    save_report,
)
from ._sr import SR_SOP_CLASSES, TRACKING_PREFIX, ReadReport, ReportError, read_report, write_report
from ._values import ImageData, MeasuredValues, image_data, measure

__all__ = [
    "KINDS",
    "SR_SOP_CLASSES",
    "TRACKING_PREFIX",
    "Hit",
    "ImageData",
    "ImageRef",
    "MeasuredValues",
    "Measurement",
    "MeasurementKind",
    "MeasurementSet",
    "Point",
    "ReadReport",
    "ReportError",
    "ReportInfo",
    "ReportSource",
    "ReportStore",
    "SaveResult",
    "StatedValue",
    "ellipse_from_box",
    "image_data",
    "list_reports",
    "load_report",
    "may_store",
    "measure",
    "new_measurement",
    "read_report",
    "save_report",
    "write_report",
]
