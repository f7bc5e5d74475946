"""A deterministic synthetic CT study: the test suite's data and the viewer's demo study.

`generate_study` writes a CT phantom as DICOM files: a stack of axial CT Image Storage
slices (int16, MONOCHROME2, HU = stored - 1024), the same stack encoded as JPEG 2000
lossless in a second series, and an Enhanced CT multi-frame instance in a third, all in
one study. Everything is a pure function of the arguments: UIDs are ``2.25.<uuid5>``
OIDs derived from a fixed namespace, the noise comes from a seeded generator, and no
timestamp of "now" is written, so two runs produce byte-identical files.

Every slice carries two markers that depend only on its index ``i`` (0-based, i.e.
InstanceNumber - 1, or frame number - 1 of the multi-frame), so a test can tell which
slice an image or a screenshot shows (see `slice_marker` and `read_slice_code`):

* a *slice code* in the air above the body: a row of 12 square cells, cell 0 always
  bright, cells 1..10 the index in binary (most significant bit first, bright = 1),
  cell 11 always dark. Bright cells are 3000 HU, dark ones air (-1000 HU), so the code
  survives any window that shows bone as brighter than air, and any scaling.
* a bright disc (2000 HU) orbiting the centre of the body once per stack: at angle
  ``2*pi*i/n`` clockwise from 12 o'clock, so scrolling looks like a moving hand.

The anatomy (body ellipse, lungs, spine, a contrast-filled vessel and a sphere whose
cross-section grows and shrinks along the stack) depends on the relative position
``i / (n - 1)``, so a series and the coarser multi-frame show the same anatomy at the
same z. This module imports only numpy and pydicom (plus pylibjpeg-openjpeg, lazily,
for JPEG 2000): no GUI.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TypedDict

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
)

__all__ = [
    "CODE_BITS",
    "GENERATOR_VERSION",
    "HU",
    "MIN_SIZE",
    "RESCALE_INTERCEPT",
    "VARIANTS",
    "SeriesManifest",
    "SliceMarker",
    "StudyManifest",
    "StudySize",
    "Variant",
    "generate_study",
    "iter_ct_datasets",
    "j2k_available",
    "phantom_pixels",
    "phantom_uid",
    "read_slice_code",
    "slice_marker",
    "study_manifest",
]

#: Bump whenever the output changes (pixels, attributes, UIDs, layout): caches of
#: generated studies (the test suite's) are keyed by it.
GENERATOR_VERSION = 1

Variant = Literal["uncompressed", "j2k", "multiframe"]
VARIANTS: tuple[Variant, ...] = ("uncompressed", "j2k", "multiframe")

#: Stored value = HU - RESCALE_INTERCEPT (slope 1), so air (-1000 HU) is stored as 24.
RESCALE_INTERCEPT = -1024

#: Hounsfield units of the phantom's materials.
HU: Mapping[str, int] = MappingProxyType(
    {
        "air": -1000,
        "lung": -800,
        "fat": -100,
        "water": 0,
        "muscle": 50,
        "contrast": 300,
        "bone": 1000,
        "marker": 2000,
        "code": 3000,
    }
)

#: Bits of the slice code: stacks of up to 2**CODE_BITS slices can be told apart.
CODE_BITS = 10
#: Smallest rows/columns of a slice: the code's 12 cells need 2 px each and a gap.
MIN_SIZE = 48
_CODE_CELLS = CODE_BITS + 2  # start guard (bright) + bits + end guard (dark)
_NOISE_SIGMA_HU = 8.0  # mild, so the J2K series is realistic but still compresses
_SEED = 20240102  # the phantom's fixed seed (numpy SeedSequence entropy)

# Fixed namespace of the phantom's UIDs (a uuid5 of a URL we control the meaning of).
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://zhiva.ai/viewer/phantom")

# Geometry: 0.7 mm pixels (a 358 mm field of view at 512 columns), 1.25 mm slices.
_PIXEL_SPACING_MM = 0.7
_SLICE_SPACING_MM = 1.25
_ORIENTATION = ["1", "0", "0", "0", "1", "0"]  # axial: rows along +x, columns along +y
_STUDY_DATE = "20240102"
_STUDY_TIME = "093000"


def phantom_uid(*parts: object) -> str:
    """A deterministic UID ``2.25.<int>`` (ISO/IEC 9834-8 UUID form) for a name.

    The integer is a uuid5 of ``parts`` in a fixed namespace, so the same parts give the
    same UID on every machine; at most 44 characters (the limit is 64).
    """
    name = "/".join(str(p) for p in parts)
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


# --- pixels ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceMarker:
    """Where slice ``index``'s markers are, in pixel coordinates of a rows x cols image.

    ``code_cells`` holds one ``(row0, row1, col0, col1, bright)`` box per cell (half-open
    ranges), in order: the bright start guard, the CODE_BITS bits MSB first, the dark end
    guard. ``disc_center`` is ``(row, col)`` of the orbiting disc.
    """

    index: int
    rows: int
    cols: int
    code_cells: tuple[tuple[int, int, int, int, bool], ...]
    disc_center: tuple[float, float]
    disc_radius: float

    @property
    def bits(self) -> tuple[bool, ...]:
        """The CODE_BITS bits of the index, most significant first."""
        return tuple(cell[4] for cell in self.code_cells[1:-1])


def _code_layout(rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """Boxes of the code cells: square cells near the top edge, centred horizontally."""
    cell = max(2, round(cols * 0.04))
    pitch = max(cell + 1, round(cols * 0.06))
    width = pitch * (_CODE_CELLS - 1) + cell
    col0 = (cols - width) // 2
    row0 = max(1, round(rows * 0.03))
    return [
        (row0, row0 + cell, col0 + k * pitch, col0 + k * pitch + cell) for k in range(_CODE_CELLS)
    ]


def slice_marker(i: int, n: int, rows: int = 512, cols: int = 512) -> SliceMarker:
    """The markers of slice ``i`` (0-based) of an ``n``-slice stack: see the module doc."""
    if not 0 <= i < n:
        raise ValueError(f"slice index {i} outside 0..{n - 1}")
    if rows < MIN_SIZE or cols < MIN_SIZE:
        raise ValueError(f"a phantom slice is at least {MIN_SIZE}x{MIN_SIZE} pixels")
    if i >= 2**CODE_BITS:
        raise ValueError(f"slice index {i} does not fit the {CODE_BITS}-bit slice code")
    bits = [True] + [bool((i >> b) & 1) for b in range(CODE_BITS - 1, -1, -1)] + [False]
    cells = tuple(
        (r0, r1, c0, c1, bright)
        for (r0, r1, c0, c1), bright in zip(_code_layout(rows, cols), bits, strict=True)
    )
    angle = 2.0 * math.pi * i / n
    orbit = 0.08 * cols
    center = (rows / 2.0 - orbit * math.cos(angle), cols / 2.0 + orbit * math.sin(angle))
    return SliceMarker(i, rows, cols, cells, center, max(1.5, 0.016 * cols))


def read_slice_code(image: np.ndarray, source_shape: tuple[int, int] | None = None) -> int:
    """Read the slice index back from an image of a phantom slice.

    ``image`` is a 2-D (or RGB/RGBA) array covering exactly the slice, brighter meaning
    a higher value: stored values, HU, or a windowed 8-bit screenshot crop of any size.
    ``source_shape`` is ``(rows, cols)`` of the slice it shows, when the image is
    rescaled (a screenshot); by default the image is taken at its native size. Each cell
    is sampled in its middle; the threshold lies halfway between the two guard cells.
    Raises ValueError if the guards are not bright/dark (no code there).
    """
    img = np.asarray(image)
    if img.ndim == 3:  # RGB(A) screenshot: the phantom is grey, so any channel will do
        img = img[..., 0]
    height, width = img.shape
    rows, cols = source_shape or (height, width)
    cells = _code_layout(rows, cols)

    def sample(box: tuple[int, int, int, int]) -> float:
        r0, r1, c0, c1 = box
        # The middle half of the cell, so edge blur and resampling do not matter.
        rr0 = int((r0 + (r1 - r0) * 0.25) * height / rows)
        rr1 = max(rr0 + 1, int((r1 - (r1 - r0) * 0.25) * height / rows + 0.5))
        cc0 = int((c0 + (c1 - c0) * 0.25) * width / cols)
        cc1 = max(cc0 + 1, int((c1 - (c1 - c0) * 0.25) * width / cols + 0.5))
        return float(np.median(img[rr0:rr1, cc0:cc1]))

    values = [sample(box) for box in cells]
    high, low = values[0], values[-1]
    if not high > low:
        raise ValueError("no slice code found: the guard cells are not bright/dark")
    threshold = (high + low) / 2.0
    index = 0
    for v in values[1:-1]:
        index = (index << 1) | int(v > threshold)
    return index


def _ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float
) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


@functools.lru_cache(maxsize=8)
def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    yy += 0.5  # pixel centres, so shapes are symmetric about the image centre
    xx += 0.5
    return yy, xx


def _anatomy_hu(t: float, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """HU image of the anatomy at relative position ``t`` in [0, 1], and the body mask."""
    yy, xx = _grid(rows, cols)
    cy, cx = rows / 2.0, cols / 2.0
    hu = np.full((rows, cols), HU["air"], dtype=np.int16)
    # Slightly wider in the middle of the stack: the outline changes as one scrolls.
    scale = 0.92 + 0.08 * math.sin(math.pi * t)
    body = _ellipse(yy, xx, cy, cx, 0.30 * rows * scale, 0.40 * cols * scale)
    inner = _ellipse(
        yy, xx, cy, cx, 0.30 * rows * scale - 0.02 * rows, 0.40 * cols * scale - 0.02 * cols
    )
    hu[body] = HU["fat"]  # a subcutaneous fat ring ...
    hu[inner] = HU["muscle"]  # ... around soft tissue
    soft = _ellipse(yy, xx, cy, cx, 0.20 * rows * scale, 0.30 * cols * scale)
    hu[soft & inner] = HU["water"]
    # Lungs: present in the upper 70 % of the stack only, growing then shrinking.
    if t < 0.7:
        grow = math.sin(math.pi * t / 0.7)
        if grow > 0.05:
            for side in (-1.0, 1.0):
                lung = _ellipse(
                    yy, xx, cy - 0.02 * rows, cx + side * 0.22 * cols,
                    0.15 * rows * grow, 0.09 * cols * grow,
                )  # fmt: skip
                hu[lung] = HU["lung"]
    # Spine: a bone ring with a fat-like marrow, below the centre.
    spine_c = (cy + 0.20 * rows, cx)
    hu[_ellipse(yy, xx, *spine_c, 0.05 * rows, 0.05 * cols)] = HU["bone"]
    hu[_ellipse(yy, xx, *spine_c, 0.03 * rows, 0.03 * cols)] = HU["fat"]
    # A contrast-filled vessel through the whole stack, in the centre.
    hu[_ellipse(yy, xx, cy, cx, 0.025 * rows, 0.025 * cols)] = HU["contrast"]
    # A bone-density sphere centred at t = 0.5: its cross-section depends on z.
    sphere_r = 0.30 * (1.0 - ((t - 0.5) / 0.3) ** 2)
    if sphere_r > 0:
        r = math.sqrt(sphere_r) * 0.09
        hu[_ellipse(yy, xx, cy - 0.16 * rows, cx + 0.16 * cols, r * rows, r * cols)] = HU["bone"]
    return hu, body


def phantom_pixels(i: int, n: int, rows: int = 512, cols: int = 512) -> np.ndarray:
    """Stored pixel values (int16, HU + 1024) of slice ``i`` (0-based) of an ``n``-slice stack.

    A pure function of its arguments: the DICOM files' Pixel Data is exactly these bytes
    (little endian), so tests can compare retrieved pixels with it.
    """
    if n < 1:
        raise ValueError("a stack has at least one slice")
    marker = slice_marker(i, n, rows, cols)
    t = i / (n - 1) if n > 1 else 0.5
    hu, body = _anatomy_hu(t, rows, cols)
    # Noise only inside the body: air stays exactly -1000 so the slice code is clean.
    rng = np.random.default_rng([_SEED, rows, cols, n, i])
    noise = rng.normal(0.0, _NOISE_SIGMA_HU, size=(rows, cols)).round().astype(np.int16)
    hu[body] += noise[body]
    yy, xx = _grid(rows, cols)
    disc = (yy - marker.disc_center[0]) ** 2 + (xx - marker.disc_center[1]) ** 2
    hu[disc <= marker.disc_radius**2] = HU["marker"]
    for r0, r1, c0, c1, bright in marker.code_cells:
        hu[r0:r1, c0:c1] = HU["code"] if bright else HU["air"]
    return (hu - RESCALE_INTERCEPT).astype(np.int16)


# --- datasets -------------------------------------------------------------------------


class StudySize(TypedDict, total=False):
    """The size arguments of `generate_study`/`study_manifest`, to pass around as ``**size``."""

    slices: int
    rows: int
    cols: int
    multiframe_frames: int
    multiframe_size: int


@dataclass(frozen=True)
class SeriesManifest:
    """One generated series: its UIDs and, once written, its files (in slice order)."""

    variant: Variant
    series_uid: str
    series_number: int
    description: str
    transfer_syntax: str
    sop_class_uid: str
    sop_uids: tuple[str, ...]
    rows: int
    cols: int
    #: Slices in the series (instances), or frames of the one multi-frame instance.
    frames: int
    paths: tuple[Path, ...] = ()


@dataclass(frozen=True)
class StudyManifest:
    """A generated phantom study: what `generate_study` wrote."""

    study_uid: str
    patient_id: str
    patient_name: str
    accession_number: str
    frame_of_reference_uid: str
    series: Mapping[Variant, SeriesManifest]

    def __getitem__(self, variant: Variant) -> SeriesManifest:
        return self.series[variant]


@dataclass(frozen=True)
class _StudyPlan:
    key: str
    slices: int
    rows: int
    cols: int
    mf_frames: int
    mf_size: int

    @property
    def study_uid(self) -> str:
        return phantom_uid(self.key, "study")

    @property
    def frame_of_reference_uid(self) -> str:
        return phantom_uid(self.key, "frame-of-reference")


_PATIENT_NAME = "Phantom^Zhiva"
_PATIENT_ID = "ZHIVA-PHANTOM-001"
_ACCESSION = "ZHIVA0001"
_DESCRIPTIONS: Mapping[Variant, tuple[int, str]] = MappingProxyType(
    {
        "uncompressed": (1, "Phantom CT 1.25 mm"),
        "j2k": (2, "Phantom CT 1.25 mm JPEG 2000 lossless"),
        "multiframe": (3, "Phantom CT multi-frame"),
    }
)


def _plan(slices: int, rows: int, cols: int, mf_frames: int, mf_size: int) -> _StudyPlan:
    if slices < 2 or mf_frames < 2:
        raise ValueError("the phantom needs at least 2 slices and 2 multi-frame frames")
    if min(rows, cols, mf_size) < MIN_SIZE:
        raise ValueError(f"phantom images are at least {MIN_SIZE}x{MIN_SIZE} pixels")
    # The dimensions are part of the key: a smaller demo study never collides with the
    # test study in one PACS.
    key = f"zhiva-phantom-v{GENERATOR_VERSION}/{slices}x{rows}x{cols}/{mf_frames}x{mf_size}"
    return _StudyPlan(key, slices, rows, cols, mf_frames, mf_size)


def _series_manifest(plan: _StudyPlan, variant: Variant) -> SeriesManifest:
    number, description = _DESCRIPTIONS[variant]
    series_uid = phantom_uid(plan.key, "series", variant)
    if variant == "multiframe":
        sop_uids: tuple[str, ...] = (phantom_uid(plan.key, "instance", variant, 1),)
        rows = cols = plan.mf_size
        frames, sop_class, ts = plan.mf_frames, EnhancedCTImageStorage, ExplicitVRLittleEndian
    else:
        sop_uids = tuple(
            phantom_uid(plan.key, "instance", variant, k) for k in range(1, plan.slices + 1)
        )
        rows, cols, frames, sop_class = plan.rows, plan.cols, plan.slices, CTImageStorage
        ts = JPEG2000Lossless if variant == "j2k" else ExplicitVRLittleEndian
    return SeriesManifest(
        variant, series_uid, number, description, str(ts), str(sop_class), sop_uids,
        rows, cols, frames,
    )  # fmt: skip


def _ds(value: float) -> str:
    """A DS string of at most 16 characters without float noise (e.g. ``-178.85``)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _geometry(plan: _StudyPlan, cols: int, frames: int) -> tuple[float, list[str]]:
    """Pixel spacing and per-slice ``z`` of a stack covering the study's field and z range.

    The main series has square 0.7 mm pixels; a stack with other dimensions (the
    multi-frame) covers the same width and z range, so the anatomy lines up in patient
    space.
    """
    spacing = _PIXEL_SPACING_MM * plan.cols / cols
    span = (plan.slices - 1) * _SLICE_SPACING_MM  # the whole stack, head to feet
    zs = [_ds(-span * k / (frames - 1)) for k in range(frames)]
    return spacing, zs


def _common(plan: _StudyPlan, series: SeriesManifest) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime = _STUDY_TIME
    ds.SeriesTime = ds.ContentTime = f"{int(_STUDY_TIME) + 100 * series.series_number:06d}"
    ds.AccessionNumber = _ACCESSION
    ds.Modality = "CT"
    ds.Manufacturer = "Zhiva"
    # Non-ASCII on purpose: clients must honour ISO_IR 192 (UTF-8).
    ds.InstitutionName = "Zhiva Test Hospital Łódź"
    ds.ReferringPhysicianName = "Doe^Jane"
    ds.StudyDescription = "Zhiva phantom CT"
    ds.SeriesDescription = series.description
    ds.PatientName = _PATIENT_NAME
    ds.PatientID = _PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.StudyInstanceUID = plan.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series.series_number
    ds.FrameOfReferenceUID = plan.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = series.rows
    ds.Columns = series.cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(transfer_syntax)
    return meta


def j2k_available() -> bool:
    """Whether JPEG 2000 encoding works here (needs pylibjpeg-openjpeg)."""
    try:
        from openjpeg.utils import encode_array  # noqa: F401
    except ImportError:
        return False
    return True


_J2K_ENCODE_LOCK = threading.Lock()


def _encode_j2k(pixels: np.ndarray) -> bytes:
    # pylibjpeg-openjpeg directly: pydicom's own encoder plugin also needs the `pylibjpeg`
    # framework package, which this project does not otherwise require. codec_format=0
    # writes a raw J2K codestream, as DICOM requires (PS3.5 A.4.4); int16 input makes it
    # signed, matching PixelRepresentation 1.
    try:
        from openjpeg.utils import encode_array
    except ImportError as exc:  # pragma: no cover - the dependency is declared
        raise RuntimeError("JPEG 2000 encoding needs pylibjpeg-openjpeg installed") from exc
    # pylibjpeg-openjpeg 2.6's encoder crashed the process (SIGSEGV) when two threads
    # encoded at once; decoding from threads was fine (but holds the GIL).
    with _J2K_ENCODE_LOCK:
        return bytes(encode_array(pixels, bits_stored=16, codec_format=0))


def _ct_slice(plan: _StudyPlan, series: SeriesManifest, k: int) -> Dataset:
    ds = _common(plan, series)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = series.sop_uids[k]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = k + 1
    spacing, zs = _geometry(plan, series.cols, series.frames)
    x0 = -spacing * series.cols / 2 + spacing / 2
    y0 = -spacing * series.rows / 2 + spacing / 2
    ds.ImagePositionPatient = [_ds(x0), _ds(y0), zs[k]]
    ds.ImageOrientationPatient = _ORIENTATION
    ds.SliceLocation = zs[k]
    ds.SliceThickness = _ds(_SLICE_SPACING_MM)
    ds.SpacingBetweenSlices = _ds(_SLICE_SPACING_MM)
    ds.KVP = "120"
    ds.PixelSpacing = [_ds(spacing), _ds(spacing)]
    # Two presets, as scanners write them: soft tissue first, lung second.
    ds.WindowCenter = ["40", "-600"]
    ds.WindowWidth = ["400", "1500"]
    ds.WindowCenterWidthExplanation = ["SOFT TISSUE", "LUNG"]
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    pixels = phantom_pixels(k, series.frames, series.rows, series.cols)
    if series.transfer_syntax == JPEG2000Lossless:
        ds.PixelData = encapsulate([_encode_j2k(pixels)])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "00"
    else:
        ds.PixelData = pixels.astype("<i2").tobytes()
        ds["PixelData"].VR = "OW"
    ds.file_meta = _file_meta(ds, series.transfer_syntax)
    return ds


def _item(**elements: object) -> Dataset:
    item = Dataset()
    for keyword, value in elements.items():
        setattr(item, keyword, value)
    return item


def _enhanced_ct(plan: _StudyPlan, series: SeriesManifest) -> Dataset:
    """One Enhanced CT instance: geometry in functional groups (PS3.3 C.7.6.16).

    Shared groups hold what all frames share (pixel measures, orientation, rescale,
    window); per-frame groups only the position and the frame's place in the stack.
    It is "Enhanced-style": the attributes a viewer needs, not the whole IOD.
    """
    ds = _common(plan, series)
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = series.sop_uids[0]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.InstanceNumber = 1
    ds.AcquisitionNumber = 1
    ds.AcquisitionDateTime = _STUDY_DATE + _STUDY_TIME
    ds.ContentQualification = "RESEARCH"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.NumberOfFrames = series.frames
    spacing, zs = _geometry(plan, series.cols, series.frames)
    thickness = _ds(float(zs[0]) - float(zs[1]))
    x0 = -spacing * series.cols / 2 + spacing / 2
    y0 = -spacing * series.rows / 2 + spacing / 2
    dim_uid = phantom_uid(plan.key, "dimension-organization")
    ds.DimensionOrganizationSequence = DicomSequence([_item(DimensionOrganizationUID=dim_uid)])
    ds.DimensionIndexSequence = DicomSequence(
        [
            _item(
                DimensionOrganizationUID=dim_uid,
                DimensionIndexPointer=0x00209056,  # Stack ID
                FunctionalGroupPointer=0x00209111,  # Frame Content Sequence
            ),
            _item(
                DimensionOrganizationUID=dim_uid,
                DimensionIndexPointer=0x00209057,  # In-Stack Position Number
                FunctionalGroupPointer=0x00209111,
            ),
        ]
    )
    shared = _item(
        PixelMeasuresSequence=DicomSequence(
            [_item(PixelSpacing=[_ds(spacing), _ds(spacing)], SliceThickness=thickness)]
        ),
        PlaneOrientationSequence=DicomSequence([_item(ImageOrientationPatient=_ORIENTATION)]),
        PixelValueTransformationSequence=DicomSequence(
            [_item(RescaleIntercept=str(RESCALE_INTERCEPT), RescaleSlope="1", RescaleType="HU")]
        ),
        FrameVOILUTSequence=DicomSequence(
            [
                _item(
                    WindowCenter=["40", "-600"],
                    WindowWidth=["400", "1500"],
                    WindowCenterWidthExplanation=["SOFT TISSUE", "LUNG"],
                )
            ]
        ),
    )
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        [
            _item(
                FrameContentSequence=DicomSequence(
                    [
                        _item(
                            StackID="1",
                            InStackPositionNumber=j + 1,
                            DimensionIndexValues=[1, j + 1],
                        )
                    ]
                ),
                PlanePositionSequence=DicomSequence(
                    [_item(ImagePositionPatient=[_ds(x0), _ds(y0), zs[j]])]
                ),
            )
            for j in range(series.frames)
        ]
    )
    frames = [
        phantom_pixels(j, series.frames, series.rows, series.cols) for j in range(series.frames)
    ]
    ds.PixelData = np.stack(frames).astype("<i2").tobytes()
    ds["PixelData"].VR = "OW"
    ds.file_meta = _file_meta(ds, series.transfer_syntax)
    return ds


def _iter_variant(plan: _StudyPlan, series: SeriesManifest) -> Iterator[Dataset]:
    if series.variant == "multiframe":
        yield _enhanced_ct(plan, series)
        return
    for k in range(series.frames):
        yield _ct_slice(plan, series, k)


def iter_ct_datasets(
    *,
    slices: int = 300,
    rows: int = 512,
    cols: int = 512,
    variant: Variant = "uncompressed",
    multiframe_frames: int = 30,
    multiframe_size: int = 256,
) -> Iterator[Dataset]:
    """Yield the datasets of one variant of the phantom study, in slice order.

    Each dataset has its ``file_meta`` set (transfer syntax included), ready for
    ``dcmwrite(path, ds, enforce_file_format=True)`` or a STOW request.
    """
    plan = _plan(slices, rows, cols, multiframe_frames, multiframe_size)
    yield from _iter_variant(plan, _series_manifest(plan, variant))


def study_manifest(
    out_dir: str | Path | None = None,
    *,
    slices: int = 300,
    rows: int = 512,
    cols: int = 512,
    variants: Sequence[Variant] = VARIANTS,
    multiframe_frames: int = 30,
    multiframe_size: int = 256,
) -> StudyManifest:
    """The manifest `generate_study` returns for these arguments, without writing.

    With ``out_dir`` the paths are where `generate_study` puts the files (e.g. to use a
    cached copy); without it they are empty.
    """
    plan = _plan(slices, rows, cols, multiframe_frames, multiframe_size)
    series: dict[Variant, SeriesManifest] = {}
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown phantom variant {variant!r}; choose from {VARIANTS}")
        manifest = _series_manifest(plan, variant)
        if out_dir is not None:
            folder = Path(out_dir) / variant
            paths = tuple(folder / f"{k:04d}.dcm" for k in range(1, len(manifest.sop_uids) + 1))
            manifest = dataclasses.replace(manifest, paths=paths)
        series[variant] = manifest
    return StudyManifest(
        study_uid=plan.study_uid,
        patient_id=_PATIENT_ID,
        patient_name=_PATIENT_NAME,
        accession_number=_ACCESSION,
        frame_of_reference_uid=plan.frame_of_reference_uid,
        series=MappingProxyType(series),
    )


def generate_study(
    out_dir: str | Path,
    *,
    slices: int = 300,
    rows: int = 512,
    cols: int = 512,
    variants: Sequence[Variant] = VARIANTS,
    multiframe_frames: int = 30,
    multiframe_size: int = 256,
) -> StudyManifest:
    """Write the phantom study under ``out_dir/<variant>/NNNN.dcm`` and describe it.

    Files are written in slice order, overwriting what is there; the result is
    byte-identical for identical arguments. Series numbers, descriptions and UIDs
    of a variant do not depend on which other variants are generated.
    """
    # Imported here: writing is the only place that needs the filewriter.
    from pydicom.filewriter import dcmwrite

    manifest = study_manifest(
        out_dir, slices=slices, rows=rows, cols=cols, variants=variants,
        multiframe_frames=multiframe_frames, multiframe_size=multiframe_size,
    )  # fmt: skip
    plan = _plan(slices, rows, cols, multiframe_frames, multiframe_size)
    for series in manifest.series.values():
        series.paths[0].parent.mkdir(parents=True, exist_ok=True)
        for path, ds in zip(series.paths, _iter_variant(plan, series), strict=True):
            dcmwrite(path, ds, enforce_file_format=True)
    return manifest
