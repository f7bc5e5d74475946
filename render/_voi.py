"""VOI stage: modality values to display intensity in [0, 1].

PS3.3 C.11.2: a VOI is either a window (Window Center/Width with VOI LUT
Function LINEAR, LINEAR_EXACT or SIGMOID, C.11.2.1.2 and C.11.2.1.3) or a VOI
LUT Sequence item (C.11.2.1.1). A header may carry several of each; the user
cycles through them. `apply_voi` is the reference float formula that the
lookup-table fast path must reproduce, and the path float images take.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from pydicom.dataset import Dataset

from ._info import frame_item
from ._modality import lut_descriptor, read_lut_data

__all__ = [
    "VOI",
    "VOILUT",
    "VOIFunction",
    "Window",
    "apply_voi",
    "auto_window",
    "header_voi_luts",
    "header_vois",
    "header_windows",
]

VOIFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
_FUNCTIONS: tuple[str, ...] = get_args(VOIFunction)


@dataclass(frozen=True, slots=True)
class Window:
    """A window in modality units (e.g. HU): centre, width and VOI LUT Function.

    LINEAR needs width >= 1 (C.11.2.1.2.1); LINEAR_EXACT and SIGMOID need
    width > 0 (C.11.2.1.3). A malformed window is a caller bug, hence ValueError.
    """

    center: float
    width: float
    function: VOIFunction = "LINEAR"
    explanation: str = ""

    def __post_init__(self) -> None:
        if self.function not in _FUNCTIONS:
            raise ValueError(f"unknown VOI LUT Function {self.function!r}")
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise ValueError("window centre and width must be finite")
        if self.function == "LINEAR" and self.width < 1:
            raise ValueError("a LINEAR window needs width >= 1 (PS3.3 C.11.2.1.2.1)")
        if self.width <= 0:
            raise ValueError(f"a {self.function} window needs width > 0")

    @property
    def bounds(self) -> tuple[float, float]:
        """Modality values at which the LINEAR/LINEAR_EXACT ramp reaches black and white."""
        if self.function == "LINEAR":
            half = (self.width - 1) / 2
            return (self.center - 0.5 - half, self.center - 0.5 + half)
        return (self.center - self.width / 2, self.center + self.width / 2)


@dataclass(frozen=True, slots=True)
class VOILUT:
    """A VOI LUT Sequence item (PS3.3 C.11.2.1.1).

    Input below `first_mapped` takes the first entry, past the end the last;
    output is scaled by the entry bit depth to [0, 1]. `data` is little-endian
    uint16 so the value hashes and can key a LUT cache.
    """

    first_mapped: int
    bits: int
    data: bytes
    explanation: str = ""

    @property
    def table(self) -> np.ndarray:
        """The entries as a read-only uint16 array."""
        return np.frombuffer(self.data, dtype="<u2")

    @property
    def full_scale(self) -> int:
        """The output value that means white."""
        nominal = 2**self.bits - 1 if 1 <= self.bits <= 16 else 65535
        peak = int(self.table.max()) if self.data else 0
        # Some writers declare fewer bits than their entries use; scaling by the
        # declared depth would then saturate, so widen to the data's real depth.
        return nominal if peak <= nominal else 2 ** int(peak).bit_length() - 1


VOI = Window | VOILUT


def _floats(value: Any) -> list[float]:
    if value is None or value == "":
        return []
    # DS values arrive as one number, a pydicom MultiValue or (from JSON) a list.
    items: Iterable[Any] = (
        [value] if isinstance(value, str) or not isinstance(value, Iterable) else value
    )
    out: list[float] = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _strings(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def header_windows(ds: Dataset, frame: int = 0) -> tuple[Window, ...]:
    """Every usable window in the header for `frame` (PS3.3 C.11.2, C.7.6.16.2.10).

    Window Center and Width are multi-valued and pair up by position; the
    enhanced-object Frame VOI LUT macro overrides the top level. Windows that
    break the standard's width rules are skipped rather than failing the image.
    """
    item = frame_item(ds, frame, "FrameVOILUTSequence")
    source = item if item is not None and "WindowCenter" in item else ds
    centers = _floats(source.get("WindowCenter"))
    widths = _floats(source.get("WindowWidth"))
    explanations = _strings(source.get("WindowCenterWidthExplanation"))
    function = str(source.get("VOILUTFunction") or ds.get("VOILUTFunction") or "LINEAR")
    function = function.strip().upper()
    if function not in _FUNCTIONS:
        function = "LINEAR"  # unknown defined terms: the standard's default
    windows: list[Window] = []
    for index, (center, width) in enumerate(zip(centers, widths, strict=False)):
        explanation = explanations[index] if index < len(explanations) else ""
        try:
            windows.append(Window(center, width, function, explanation))  # type: ignore[arg-type]
        except ValueError:
            continue
    return tuple(windows)


def header_voi_luts(ds: Dataset, *, signed_input: bool | None = None) -> tuple[VOILUT, ...]:
    """Every VOI LUT Sequence item, as `VOILUT` values (PS3.3 C.11.2.1.1).

    The LUT's input is the modality output, so its first mapped value (US or
    SS) is negative when that output can be; `signed_input` says whether it
    can (default: the Pixel Representation), and a US reading of 32768+ is
    then taken as negative.
    """
    sequence = ds.get("VOILUTSequence")
    if not sequence:
        return ()
    signed = signed_input
    if signed is None:
        signed = int(ds.get("PixelRepresentation") or 0) == 1
    luts: list[VOILUT] = []
    for item in sequence:
        try:
            entries, first, bits = lut_descriptor(item, signed=signed)
            table = read_lut_data(item, ds, entries)
        except (TypeError, ValueError, IndexError):
            continue  # a malformed item: offer the others
        if table.size == 0:
            continue
        luts.append(
            VOILUT(
                first_mapped=first,
                bits=bits,
                data=table.astype("<u2").tobytes(),
                explanation=str(item.get("LUTExplanation") or ""),
            )
        )
    return tuple(luts)


def header_vois(
    ds: Dataset, frame: int = 0, *, signed_input: bool | None = None
) -> tuple[VOI, ...]:
    """Windows first, then VOI LUTs: the list a user cycles through.

    The standard lets the application choose when both are present; windows
    come first because they are what a window/level drag starts from.
    """
    return (*header_windows(ds, frame), *header_voi_luts(ds, signed_input=signed_input))


def apply_voi(values: np.ndarray, voi: VOI) -> np.ndarray:
    """Display intensity in [0, 1] (float64) for modality `values` (PS3.3 C.11.2).

    LINEAR (C.11.2.1.2.1): ``((x - (c - 0.5)) / (w - 1) + 0.5)`` clipped;
    LINEAR_EXACT (C.11.2.1.3.2): ``((x - c) / w + 0.5)`` clipped;
    SIGMOID (C.11.2.1.3.1): ``1 / (1 + exp(-4 (x - c) / w))``.
    Clipping reproduces the standard's piecewise limits exactly. NaN stays NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    if isinstance(voi, VOILUT):
        table = voi.table
        finite = np.nan_to_num(x, nan=voi.first_mapped)
        index = np.clip(np.floor(finite) - voi.first_mapped, 0, len(table) - 1).astype(np.intp)
        out: np.ndarray = table[index] / float(voi.full_scale)
        return np.where(np.isnan(x), np.nan, out)
    c, w = voi.center, voi.width
    if voi.function == "SIGMOID":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    if voi.function == "LINEAR_EXACT":
        return np.clip((x - c) / w + 0.5, 0.0, 1.0)
    if w == 1:
        # The ramp has zero length: a threshold at c - 0.5.
        return np.where(np.isnan(x), np.nan, (x > c - 0.5).astype(np.float64))
    return np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)


def auto_window(
    values: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
    low_percentile: float = 0.5,
    high_percentile: float = 99.5,
) -> Window:
    """A LINEAR_EXACT window spanning the bulk of `values` (modality units).

    For images whose header has no VOI. Percentiles rather than min/max so a
    few hot pixels or the air around a CT do not flatten the contrast;
    `exclude` masks padding. LINEAR_EXACT because float data (parametric maps)
    may need widths below 1, which LINEAR forbids.
    """
    x = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(x)
    if exclude is not None:
        keep &= ~exclude
    data = x[keep]
    if data.size == 0:
        return Window(0.5, 1.0, "LINEAR_EXACT", "auto")
    low, high = np.percentile(data, [low_percentile, high_percentile])
    if not high > low:
        low, high = float(data.min()), float(data.max())
    if not high > low:
        # A flat image: any width shows it as mid grey.
        return Window(float(low), 1.0, "LINEAR_EXACT", "auto")
    return Window(float((low + high) / 2), float(high - low), "LINEAR_EXACT", "auto")
