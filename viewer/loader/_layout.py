"""A series' layout: which instance and frame sits at each scroll position.

Built from instance headers (DICOM without pixel data) — the WADO-RS /metadata
answer, the whole study's metadata, or the headers of instances as they stream in —
and ordered by geometry with `render.split_stacks`: the largest stack first, each in
position order; a scout or other stack follows as its own run of slices. Each slice
also records its instance's rank in the server's order, which the loader uses to
predict when the bulk stream will deliver it.

Headers of streamed instances are kept as their bytes and parsed when first asked
for (`InstanceHeader`): a parsed pydicom dataset is ~130 objects the garbage
collector scans on every full collection, and 300 of them cost ~50 ms of a 0.5 s
series here; a few KB of bytes cost it nothing.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

import render

from ._quick import quick_geometry

__all__ = [
    "InstanceHeader",
    "SeriesLayout",
    "SliceRef",
    "build_layout",
    "header_of",
    "instance_geometries",
    "sop_uid_of",
]

PIXEL_KEYWORDS = {
    int(Tag("PixelData")): "OW",
    int(Tag("FloatPixelData")): "OF",
    int(Tag("DoubleFloatPixelData")): "OD",
}


def sop_uid_of(ds: Dataset) -> str:
    return str(ds.get("SOPInstanceUID", "") or "")


def header_of(ds: Dataset) -> Dataset:
    """`ds` without its pixel bytes: the same elements, pixel data present but empty.

    The empty pixel element mirrors what WADO-RS metadata gives (bulk data left out),
    so `render.pixel_format` and `render.image_info` work on any header; an image
    read with ``stop_before_pixels`` (Rows but no pixel element) gets an empty Pixel
    Data too. The copy shares element objects with `ds`: cheap, and it drops the
    reference to the instance's raw bytes that a parsed `FileDataset` keeps.
    """
    elements = {tag: elem for tag, elem in ds.items() if int(tag) not in PIXEL_KEYWORDS}
    header = Dataset(elements)
    present = [tag for tag in PIXEL_KEYWORDS if tag in ds]
    if not present and "Rows" in ds and "Columns" in ds:
        present = [int(Tag("PixelData"))]
    for tag in present:
        header.add_new(tag, PIXEL_KEYWORDS[tag], b"")
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        header.file_meta = meta
    return header


def _parse_header(raw: bytes) -> Dataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True)
    except InvalidDicomError:
        ds = pydicom.dcmread(io.BytesIO(raw), force=True, stop_before_pixels=True)
    return header_of(ds)


class InstanceHeader:
    """One instance's header (no pixel data), as a dataset made on first use.

    Built from a dataset (metadata, a local file), or from the bytes of a Part 10
    instance up to its pixel data. `pixel_format` and `geometry`, when the caller
    already read them, answer without parsing.
    """

    __slots__ = ("_dataset", "_raw", "geometry", "pixel_format", "sop_uid")

    def __init__(
        self,
        sop_uid: str,
        *,
        dataset: Dataset | None = None,
        raw: bytes | None = None,
        pixel_format: render.PixelFormat | None = None,
        geometry: tuple[render.SliceGeometry, ...] | None = None,
    ) -> None:
        if dataset is None and raw is None:
            raise ValueError("an instance header needs a dataset or its bytes")
        self.sop_uid = sop_uid
        self._dataset = dataset
        self._raw = raw
        self.pixel_format = pixel_format
        self.geometry = geometry

    @classmethod
    def of(cls, ds: Dataset) -> InstanceHeader:
        """The header of a dataset (its pixel bytes, if any, are left out)."""
        return cls(sop_uid_of(ds), dataset=header_of(ds))

    @property
    def dataset(self) -> Dataset:
        dataset = self._dataset
        if dataset is None:
            assert self._raw is not None
            # Two threads may parse the same header at once; both get equal datasets
            # and the last one is kept: cheaper than a lock on every access.
            dataset = self._dataset = _parse_header(self._raw)
        return dataset

    def format(self) -> render.PixelFormat:
        """The pixel format (raises `render.UnsupportedImage` for a non-image)."""
        if self.pixel_format is None:
            self.pixel_format = render.pixel_format(self.dataset)
        return self.pixel_format

    def geometries(self) -> tuple[render.SliceGeometry, ...]:
        if self.geometry is None:
            self.geometry = instance_geometries(self.dataset)
        return self.geometry


def instance_geometries(header: Dataset) -> tuple[render.SliceGeometry, ...]:
    """The geometry of every frame of an instance; empty for an instance with no image."""
    if "Rows" not in header or "Columns" not in header:
        return ()  # no image (render.pixel_format would say why; this is cheaper)
    quick = quick_geometry(header)
    if quick is not None:
        return quick
    frames = render.number_of_frames(header)
    return render.slice_geometries(header)[:frames]


@dataclass(frozen=True, slots=True)
class SliceRef:
    """One scroll position: frame `frame` (0-based) of instance `sop_uid`."""

    sop_uid: str
    frame: int
    frames_in_instance: int
    geometry: render.SliceGeometry
    #: Position of the instance in the server's order (metadata or stream order).
    stream_rank: int


@dataclass(frozen=True, eq=False)
class SeriesLayout:
    """The slices of one series in display order, with their instance headers."""

    study_uid: str
    series_uid: str
    slices: tuple[SliceRef, ...]
    #: Index ranges of `slices` that scroll as one stack, largest first.
    stacks: tuple[range, ...]
    #: Instance headers by SOP Instance UID (`InstanceHeader.dataset` parses on demand).
    headers: Mapping[str, InstanceHeader]
    #: Instances in server order (the order a series retrieval streams them).
    instance_order: tuple[str, ...]
    _index: dict[tuple[str, int], int] = field(repr=False, default_factory=dict)
    _infos: dict[int, render.ImageInfo] = field(repr=False, default_factory=dict)
    _lock: threading.Lock = field(repr=False, default_factory=threading.Lock)

    def __len__(self) -> int:
        return len(self.slices)

    def index_of(self, sop_uid: str, frame: int = 0) -> int | None:
        """The scroll position of a frame, None if it is not part of the layout."""
        return self._index.get((sop_uid, frame))

    def header(self, index: int) -> Dataset:
        """Slice `index`'s instance header (parsed on first use)."""
        return self.headers[self.slices[index].sop_uid].dataset

    def image_info(self, index: int) -> render.ImageInfo:
        """How to display slice `index` (modality LUT, VOI...), computed once per slice."""
        with self._lock:
            info = self._infos.get(index)
        if info is None:
            ref = self.slices[index]
            info = render.image_info(self.header(index), ref.frame)
            with self._lock:
                self._infos[index] = info
        return info

    def frame_nbytes(self, index: int) -> int:
        """Decoded size of one frame in bytes (what it costs in the memory cache)."""
        try:
            fmt = self.headers[self.slices[index].sop_uid].format()
        except render.RenderError:
            # Not decodable (its slices fail, saying why): as much as 16-bit grey.
            geometry = self.slices[index].geometry
            return geometry.rows * geometry.columns * 2
        bits = fmt.bits_allocated if fmt.bits_allocated in (8, 16, 32, 64) else 16
        return fmt.rows * fmt.columns * fmt.samples_per_pixel * bits // 8


def build_layout(
    study_uid: str, series_uid: str, headers: Sequence[InstanceHeader | Dataset]
) -> SeriesLayout:
    """Order the frames of `headers` (in server order) for display.

    Instances without an image (no Rows/Columns, e.g. a structured report filed in
    the series) are left out; a series of such instances has an empty layout.
    """
    flat: list[render.SliceGeometry] = []
    refs: list[tuple[str, int, int, int]] = []  # sop, frame, frames, rank
    by_sop: dict[str, InstanceHeader] = {}
    order: list[str] = []
    for rank, item in enumerate(headers):
        header = item if isinstance(item, InstanceHeader) else InstanceHeader.of(item)
        sop = header.sop_uid
        if not sop or sop in by_sop:
            continue  # a server listing one instance twice still shows it once
        by_sop[sop] = header
        order.append(sop)
        frames = header.geometries()
        for frame, geometry in enumerate(frames):
            flat.append(geometry)
            refs.append((sop, frame, len(frames), rank))
    slices: list[SliceRef] = []
    stacks: list[range] = []
    for stack in render.split_stacks(flat):
        start = len(slices)
        for i in stack.indices:
            sop, frame, count, rank = refs[i]
            slices.append(SliceRef(sop, frame, count, flat[i], rank))
        stacks.append(range(start, len(slices)))
    layout = SeriesLayout(
        study_uid=study_uid,
        series_uid=series_uid,
        slices=tuple(slices),
        stacks=tuple(stacks),
        headers=MappingProxyType(by_sop),
        instance_order=tuple(order),
    )
    layout._index.update({(ref.sop_uid, ref.frame): i for i, ref in enumerate(slices)})
    return layout
