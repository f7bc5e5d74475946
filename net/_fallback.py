"""The pieces of the client's fallbacks for servers that lack a DICOMweb feature.

* `concurrently`: a few requests in flight, results in arrival order, cancelled when
  the consumer stops — how a series is fetched from a server without series-level
  retrieve (AWS HealthImaging).
* `part10_from_frames`: an instance rebuilt from its metadata and its frames, for
  servers that serve neither series nor instances (static DICOMweb).
* `pages`: QIDO paging that survives servers that ignore ``offset`` or ``limit``,
  repeat results across pages (de-duplicated) or answer 204 past the end.
* `resolve_bulk_data_uri`: a BulkDataURI made safe: relative ones resolve against the
  request's URL, absolute ones are only followed under our own WADO-RS root — a server
  behind a proxy names its internal host or path (Orthanc does), and credentials must
  never go there.
"""

from __future__ import annotations

import concurrent.futures
import io
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.tag import Tag
from pydicom.uid import UID

from ._models import Frame

__all__ = [
    "BULK_NEEDED",
    "FALLBACK_IN_FLIGHT",
    "PALETTE_TAGS",
    "concurrently",
    "frame_count",
    "in_instance_order",
    "lacks_palette",
    "mark_pixel_data",
    "pages",
    "part10_from_frames",
    "read_ahead",
    "resolve_bulk_data_uri",
    "sop_uid_of",
    "url_safe_uid",
]

T = TypeVar("T")
R = TypeVar("R")

#: Instance requests kept in flight when a series comes instance by instance (issue 17
#: asked for 4-8). bench/retrieve.py --fallback on the test PACS (2 shared cores), three
#: runs, median time over the one stream: 4 in flight 2.29x/2.90x/3.14x, 6 2.41x/2.70x/
#: 2.67x, 8 2.45x/2.78x/2.42x; 1 in flight ~3x. The floor is CPU, not latency: per
#: series the client spends ~0.55 s (0.25 s streaming), Orthanc ~0.6 s (0.1 s).
FALLBACK_IN_FLIGHT = 6

#: Bulk elements fetched with the metadata because a picture needs them: palette colour
#: lookup tables (PS3.3 C.7.6.3.1.6) and the LUT Data of modality/VOI LUT sequences.
BULK_NEEDED = frozenset(
    {
        "00281201", "00281202", "00281203", "00281204",  # palette LUT data
        "00281221", "00281222", "00281223",  # segmented palette LUT data
        "00283006",  # LUT Data
    }
)  # fmt: skip

#: A palette colour image's lookup tables: descriptors and data (PS3.3 C.7.6.3.1.5-6).
PALETTE_TAGS = tuple(
    int(Tag(0x0028, element))
    for element in (0x1101, 0x1102, 0x1103, 0x1201, 0x1202, 0x1203, 0x1221, 0x1222, 0x1223)
)
_PALETTE_DATA = (int(Tag(0x0028, 0x1201)), int(Tag(0x0028, 0x1221)))

_PIXEL_TAGS = (int(Tag("PixelData")), int(Tag("FloatPixelData")), int(Tag("DoubleFloatPixelData")))


_URL_SAFE_UID = re.compile(r"[0-9A-Za-z._-]{1,128}")


def url_safe_uid(uid: str) -> bool:
    """Whether a UID a server sent can go into a request path as it is.

    DICOM UIDs are digits and dots (PS3.5 9.1); some servers use other identifiers
    (GUIDs). Anything else — a slash, a control character — never reaches a URL.
    """
    return _URL_SAFE_UID.fullmatch(uid) is not None


def sop_uid_of(ds: Dataset) -> str:
    return str(ds.get("SOPInstanceUID", "") or "")


def lacks_palette(ds: Dataset) -> bool:
    """A palette colour image whose lookup table data is missing or empty."""
    if str(ds.get("PhotometricInterpretation", "") or "").strip() != "PALETTE COLOR":
        return False
    return not any(tag in ds and ds[tag].value for tag in _PALETTE_DATA)


def mark_pixel_data(ds: Dataset) -> None:
    """Give metadata of an image an empty Pixel Data element when it has none.

    Servers that leave binary elements out of metadata (Azure omits every OB/OW) would
    otherwise describe an image with no pixels; the empty element says, as a
    BulkDataURI would, that the pixels are fetched separately (as frames).
    """
    if "Rows" in ds and "Columns" in ds and not any(tag in ds for tag in _PIXEL_TAGS):
        bits = int(ds.get("BitsAllocated", 16) or 16)
        ds.add_new("PixelData", "OW" if bits > 8 else "OB", b"")


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def in_instance_order(datasets: Iterable[Dataset]) -> list[str]:
    """SOP Instance UIDs by Instance Number (those without one last), as listed;
    UIDs that cannot go into a URL are left out."""

    def number(ds: Dataset) -> tuple[bool, int]:
        try:
            return (False, int(ds.get("InstanceNumber")))
        except (TypeError, ValueError):
            return (True, 0)

    # A UID that cannot go into a URL cannot be fetched either: left out.
    return [sop_uid_of(ds) for ds in sorted(datasets, key=number) if url_safe_uid(sop_uid_of(ds))]


def concurrently(
    items: Iterable[T], fetch: Callable[[T], R], in_flight: int = FALLBACK_IN_FLIGHT
) -> Iterator[R]:
    """``fetch(item)`` for every item, `in_flight` at a time, yielded as each finishes.

    The first failure is raised (what is still queued is cancelled). Closing the
    iterator cancels what has not started; requests already running finish on their
    worker and are dropped.
    """
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, in_flight), thread_name_prefix="zhiva-instances"
    )
    pending: set[concurrent.futures.Future[R]] = set()
    queue = iter(items)

    def top_up() -> None:
        while len(pending) < in_flight:
            try:
                item = next(queue)
            except StopIteration:
                return
            pending.add(pool.submit(fetch, item))

    try:
        top_up()
        while pending:
            done, _ = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                pending.discard(future)
                result = future.result()
                top_up()  # before the yield: the pool works while the consumer parses
                yield result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def read_ahead(items: Iterable[T], *, name: str = "zhiva-listing") -> Iterator[T]:
    """`items`, iterated on a thread of its own as fast as it goes, for a consumer
    that must not wait for it: a QIDO listing's next page is asked for while the
    instances of the page before are being fetched, instead of when the last of them
    has been taken (on the test PACS a 200-instance page took ~0.13 s, in which the
    requests in flight ran dry). Its errors are raised here, in order; closing this
    iterator stops the thread after the item it is on.
    """
    results: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                results.put((True, item))
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            results.put((False, exc))
            return
        results.put((False, None))

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            ok, value = results.get()
            if ok:
                yield value  # type: ignore[misc]
                continue
            if value is not None:
                raise value  # type: ignore[misc]
            return
    finally:
        stop.set()


def pages(
    fetch: Callable[[int, int], Sequence[T]],
    *,
    key: Callable[[T], str],
    page_size: Callable[[], int],
    max_results: int | None = None,
) -> Iterator[T]:
    """Every result of a search, page by page (``fetch(limit, offset)``), each once.

    `page_size` is asked before each page: a server that refused a larger limit on the
    first page is asked for its cap from then on.

    Stops at a short or empty page (an offset past the end may answer 204, which the
    client reads as no results), at a page with nothing new (a server that ignores
    ``offset`` sends the same page again) and at a page longer than asked for (one that
    ignores ``limit`` sent everything). Results repeated across pages are dropped, and
    the next offset counts what the server sent, so none is skipped either.
    """
    seen: set[str] = set()
    offset = 0
    while max_results is None or len(seen) < max_results:
        limit = page_size()
        page = fetch(limit, offset)
        fresh = 0
        for item in page:
            uid = key(item)
            if uid in seen:
                continue
            if max_results is not None and len(seen) >= max_results:
                return
            seen.add(uid)
            fresh += 1
            yield item
        # The cap a server imposed on this very page counts as the size asked for.
        if not fresh or len(page) not in (limit, page_size()):
            return
        offset += len(page)


def resolve_bulk_data_uri(uri: str, request_url: str, wado_rs_root: str) -> str | None:
    """Where to fetch a BulkDataURI from, or None when it points outside our roots.

    A relative URI resolves against the metadata request's URL (RFC 3986 §5.2). An
    absolute one under our WADO-RS root is used as it is; one naming another host or
    path (a server's internal address behind a proxy) is rebuilt from our root when its
    path has the standard ``/studies/...`` shape, and ignored otherwise.
    """
    absolute = urljoin(request_url, uri.strip())
    root = wado_rs_root.rstrip("/")
    if absolute.startswith(root + "/"):
        return absolute
    parts = urlsplit(absolute)
    where = parts.path.find("/studies/")
    if where < 0:
        return None
    rebuilt = root + parts.path[where:]
    return f"{rebuilt}?{parts.query}" if parts.query else rebuilt


def part10_from_frames(header: Dataset, frames: Sequence[Frame]) -> bytes:
    """A Part 10 file of `header` (metadata, pixel data empty or absent) and its frames.

    Native frames are concatenated; compressed ones encapsulated, one fragment each
    (PS3.5 A.4). The frames must share one transfer syntax. Raises ValueError when they
    cannot make an instance.
    """
    if not frames:
        raise ValueError("no frames")
    syntaxes = {frame.transfer_syntax_uid or "1.2.840.10008.1.2.1" for frame in frames}
    if len(syntaxes) != 1:
        raise ValueError(f"frames in {len(syntaxes)} different transfer syntaxes")
    syntax = UID(syntaxes.pop())
    ds = Dataset({tag: elem for tag, elem in header.items() if int(tag) not in _PIXEL_TAGS})
    if syntax.is_encapsulated:
        ds.add_new("PixelData", "OB", encapsulate([frame.data for frame in frames]))
    else:
        bits = int(header.get("BitsAllocated", 16) or 16)
        ds.add_new("PixelData", "OW" if bits > 8 else "OB", b"".join(f.data for f in frames))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = header.get("SOPClassUID", "")
    ds.file_meta.MediaStorageSOPInstanceUID = header.get("SOPInstanceUID", "")
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
