"""`DicomWebClient`: QIDO-RS, WADO-RS, WADO-URI and STOW-RS against one server.

Built on `HttpSession` (TLS, retries, redirects, deadlines, bounded bodies, error
mapping). Whole series arrive as one streamed multipart/related response parsed as it
comes in — on this kind of machine one large streamed request is much faster than one
request per instance (DESIGN.md §5). Compressed data is requested as stored
(`transfer-syntax=*`) and decoded locally, since servers such as Orthanc cannot
transcode JPEG 2000. Whatever a server sends, these methods raise only `net.errors`.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, TypeVar

import httpx
import msgspec
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ._body import Watch
from ._config import ServerConfig, qido_root, wado_rs_root, wado_uri_root
from ._errors import DicomWebError, NotFound, ProtocolError, ServerError, TlsError, TransportError
from ._http import HttpSession
from ._limits import DEFAULT_DEADLINES, DEFAULT_SIZE_LIMITS, Deadlines, SizeLimits
from ._models import (
    Frame,
    InstanceSummary,
    RenderedImage,
    SeriesSummary,
    StoreResult,
    StudyQuery,
    StudySummary,
    instance_from_json,
    series_from_json,
    sniff_media_type,
    store_result_from_json,
    study_from_json,
)
from ._multipart import (
    MultipartParser,
    Part,
    PartBuffer,
    PartCheck,
    encode_multipart,
    parse_content_type,
)
from ._retry import DEFAULT_RETRY, RetryPolicy

__all__ = [
    "ACCEPT_DICOM",
    "ACCEPT_DICOM_JSON",
    "ACCEPT_FRAMES",
    "DEFAULT_PAGE_SIZE",
    "STREAM_CHUNK_SIZE",
    "DicomWebClient",
]

log = logging.getLogger("net.client")

ACCEPT_DICOM_JSON = "application/dicom+json, application/json;q=0.9"
#: As stored: compressed instances are decoded locally (Orthanc answers 500 for a J2K
#: instance unless the request allows any transfer syntax).
ACCEPT_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
ACCEPT_FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
#: None: pass the network's reads through as they come (the coalescing backend makes
#: them ~256 KiB); re-chunking to a fixed size would only add a copy.
STREAM_CHUNK_SIZE: int | None = None
DEFAULT_PAGE_SIZE = 100
#: Fields the study list shows that some servers only return when asked by name.
STUDY_INCLUDE_FIELDS = (
    "00081030",  # StudyDescription
    "00080061",  # ModalitiesInStudy
    "00100030",  # PatientBirthDate
    "00100040",  # PatientSex
    "00201206",  # NumberOfStudyRelatedSeries
    "00201208",  # NumberOfStudyRelatedInstances
)
SERIES_INCLUDE_FIELDS = ("0008103E", "00201209", "00180015", "00080021")
_TEXT_QUERY_FIELDS = ("PatientName", "PatientID", "AccessionNumber", "StudyDescription")


def _dicom_date(value: Any) -> str:
    return value.strftime("%Y%m%d") if value is not None else ""


_SEPARATORS = re.compile(r"[\s,^]+")


def _wildcard(term: str) -> str:
    """``*term*`` for servers without fuzzy matching (OHIF's supportsWildcard).

    Spaces, commas and ``^`` between words become ``*`` so "doe john" or "Doe, John"
    finds ``Doe^John`` — a literal space or caret cannot be sent to Orthanc (see
    `net._http.encode_query`) and would not match a PN component separator anyway.
    """
    term = term.strip()
    if not term:
        return ""
    pattern = _SEPARATORS.sub("*", term)
    if "*" in term or "?" in term:  # the user's own pattern: respected as written
        return pattern
    return f"*{pattern}*"


_T = TypeVar("_T")


def looks_like_dicom(head: bytes) -> bool:
    """Whether the first bytes of a body can start a DICOM instance: a Part 10 file
    (``DICM`` after the 128-byte preamble), or a dataset sent without one (PS3.10 7.1)
    that starts with a File Meta (0002,xxxx) or an Identifying (0008,xxxx) element,
    in either byte order."""
    if head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group = head[:2]
    return group in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")  # LE or BE


def _not_dicom(head: bytes, *, server: str, what: str) -> ProtocolError:
    return ProtocolError(
        f"{what} is not DICOM (it starts with {head[:16]!r}); reading stopped.",
        server=server,
        hint="Check the WADO Postfix: the URL may not point at a DICOMweb service.",
    )


def _parse_dataset(body: bytes | Part, *, server: str, what: str) -> Dataset:
    """A pydicom dataset from a part (read in place: pixel data is copied once)."""

    def source() -> BinaryIO:
        return body.open() if isinstance(body, Part) else io.BytesIO(body)  # type: ignore[return-value]

    try:
        return pydicom.dcmread(source())
    except InvalidDicomError:
        pass  # some servers send the dataset without the Part 10 preamble
    except Exception as exc:  # pydicom raises many kinds on a broken stream
        raise ProtocolError(
            f"{what} is not a readable DICOM instance ({exc}).", server=server
        ) from exc
    head = source().read(132)
    if not looks_like_dicom(head):  # never parse megabytes of garbage with force=True
        raise _not_dicom(head, server=server, what=what)
    try:
        return pydicom.dcmread(source(), force=True)
    except Exception as exc:
        raise ProtocolError(
            f"{what} is not a readable DICOM instance ({exc}).", server=server
        ) from exc


class DicomWebClient:
    """A DICOMweb client for one configured server.

    Thread-safe for concurrent requests (one pooled `httpx.Client` underneath); `auth`
    is any `httpx.Auth` (Basic, the Zhiva token flow, ...).
    """

    def __init__(
        self,
        config: ServerConfig,
        auth: httpx.Auth | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        size_limits: SizeLimits = DEFAULT_SIZE_LIMITS,
        deadlines: Deadlines = DEFAULT_DEADLINES,
    ) -> None:
        self.config = config
        self._http = HttpSession(
            config,
            auth,
            transport=transport,
            retry=retry,
            size_limits=size_limits,
            deadlines=deadlines,
        )
        self.size_limits = size_limits
        self.server = self._http.server
        self.qido_root = qido_root(config)
        self.wado_rs_root = wado_rs_root(config)
        self.wado_uri_root = wado_uri_root(config)
        #: Learned on first use: "thumbnail" or "rendered" (Orthanc has no /thumbnail).
        self._thumbnail_endpoint: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DicomWebClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- QIDO-RS ----------------------------------------------------------------------

    def _qido(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self.qido_root}/{path}"
        response = self._http.request(
            "GET",
            url,
            params=params,
            headers={"Accept": ACCEPT_DICOM_JSON},
            what="The search answer",
        )
        if response.status_code == 204 or not response.content.strip():
            return []
        try:
            body = msgspec.json.decode(response.content)
        except (msgspec.DecodeError, RecursionError, MemoryError) as exc:
            raise ProtocolError(
                f"The search answer is not DICOM JSON ({_brief(exc)}).",
                server=self.server,
                hint="Check the QIDO Postfix: the URL may not point at a DICOMweb service.",
                response=response,
            ) from exc
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise ProtocolError(
                "The search answer is not a list of DICOM JSON objects.",
                server=self.server,
                hint="Check the QIDO Postfix: the URL may not point at a DICOMweb service.",
                response=response,
            )
        return body

    def _paging(self, params: dict[str, str], limit: int | None, offset: int | None) -> None:
        if limit is not None:
            params["limit"] = str(limit)
        if offset:
            params["offset"] = str(offset)

    def study_query_params(self, query: StudyQuery) -> dict[str, str]:
        """QIDO parameters for a study search, with wildcards or fuzzy matching as configured."""
        text = {
            "PatientName": query.patient_name.strip(),
            "PatientID": query.patient_id.strip(),
            "AccessionNumber": query.accession_number.strip(),
            "StudyDescription": query.description.strip(),
        }
        params: dict[str, str] = {}
        for key in _TEXT_QUERY_FIELDS:
            value = text[key]
            if value:
                params[key] = value if self.config.fuzzy_matching else _wildcard(value)
        if self.config.fuzzy_matching and any(text.values()):
            params["fuzzymatching"] = "true"
        if query.birth_date is not None:
            params["PatientBirthDate"] = _dicom_date(query.birth_date)
        if query.study_date_from is not None or query.study_date_to is not None:
            start, end = _dicom_date(query.study_date_from), _dicom_date(query.study_date_to)
            params["StudyDate"] = start if start == end else f"{start}-{end}"
        if query.modality.strip():
            params["ModalitiesInStudy"] = query.modality.strip().upper()
        if query.study_uid.strip():
            params["StudyInstanceUID"] = query.study_uid.strip()
        if self.config.qido_supports_include_field:
            params["includefield"] = ",".join(STUDY_INCLUDE_FIELDS)
        return params

    def search_studies(
        self,
        query: StudyQuery | None = None,
        *,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[StudySummary]:
        """One page of studies matching `query`."""
        params = self.study_query_params(query or StudyQuery())
        self._paging(params, limit, offset)
        items = self._qido("studies", params)
        return self._from_json(lambda: [study_from_json(item) for item in items], "search")

    def iter_studies(
        self,
        query: StudyQuery | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_results: int = 1000,
    ) -> Iterator[StudySummary]:
        """All matching studies, page by page, stopping safely on servers that ignore
        `offset` (the same page again) or `limit` (everything at once)."""
        seen: set[str] = set()
        offset = 0
        while len(seen) < max_results:
            page = self.search_studies(query, limit=page_size, offset=offset)
            fresh = 0
            for study in page:
                # Orthanc can list one Study Instance UID twice (two patients sharing it in
                # pydicom's test files); a study list keyed by UID shows it once.
                if study.study_uid in seen:
                    continue
                if len(seen) >= max_results:
                    return
                seen.add(study.study_uid)
                fresh += 1
                yield study
            if not fresh or len(page) < page_size or len(page) > page_size:
                return  # last page, offset ignored, or limit ignored
            offset += len(page)

    def search_series(
        self,
        study_uid: str,
        *,
        modality: str = "",
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[SeriesSummary]:
        params: dict[str, str] = {}
        if modality:
            params["Modality"] = modality.upper()
        if self.config.qido_supports_include_field:
            params["includefield"] = ",".join(SERIES_INCLUDE_FIELDS)
        self._paging(params, limit, offset)
        items = self._qido(f"studies/{study_uid}/series", params)
        return self._from_json(
            lambda: [series_from_json(item, study_uid) for item in items], "search"
        )

    def search_instances(
        self,
        study_uid: str,
        series_uid: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[InstanceSummary]:
        params: dict[str, str] = {}
        self._paging(params, limit, offset)
        items = self._qido(f"studies/{study_uid}/series/{series_uid}/instances", params)
        return self._from_json(
            lambda: [instance_from_json(item, study_uid, series_uid) for item in items], "search"
        )

    def _from_json(self, convert: Callable[[], _T], what: str) -> _T:
        """Typed values from DICOM JSON; whatever the JSON held, only our error escapes."""
        try:
            return convert()
        except Exception as exc:  # a value no DICOM JSON has (a 5,000-digit number...)
            raise ProtocolError(
                f"The {what} answer holds a value that is not DICOM ({_brief(exc)}).",
                server=self.server,
                hint="The server's answer is malformed; report it to the PACS administrator.",
            ) from exc

    # -- WADO-RS metadata -------------------------------------------------------------

    def _metadata(self, url: str) -> list[Dataset]:
        response = self._http.request(
            "GET", url, headers={"Accept": ACCEPT_DICOM_JSON}, what="The metadata answer"
        )
        try:
            items = msgspec.json.decode(response.content)
        except (msgspec.DecodeError, RecursionError, MemoryError) as exc:
            raise ProtocolError(
                f"The metadata answer is not DICOM JSON ({_brief(exc)}).", server=self.server
            ) from exc
        if not isinstance(items, list):
            raise ProtocolError("The metadata answer is not a list.", server=self.server)
        datasets = []
        for item in items:
            try:
                # Bulk data (pixel data) is not fetched here: the loader asks for frames.
                datasets.append(Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b""))
            except Exception as exc:  # pydicom's many kinds, RecursionError, MemoryError
                raise ProtocolError(
                    f"Unreadable metadata item ({_brief(exc)}).", server=self.server
                ) from exc
        return datasets

    def study_metadata(self, study_uid: str) -> list[Dataset]:
        """Metadata (no pixel data) of every instance of a study, in one request."""
        return self._metadata(f"{self.wado_rs_root}/studies/{study_uid}/metadata")

    def series_metadata(self, study_uid: str, series_uid: str) -> list[Dataset]:
        """Metadata (no pixel data) of every instance of one series (lazy load)."""
        return self._metadata(
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}/metadata"
        )

    # -- WADO-RS retrieval ------------------------------------------------------------

    def iter_parts(
        self, url: str, accept: str, *, watch: Watch | None = None, dicom: bool | None = None
    ) -> Iterator[Part]:
        """Parts of one multipart/related response as they stream in.

        Within `watch` (default: the total request deadline); each part bounded by
        `SizeLimits.part_bytes`; with `dicom` (default: when `accept` asks for
        application/dicom) a part that does not start like DICOM is refused at once.
        A single-part answer (some servers send one body for a multipart request) is
        the one part.
        """
        http = self._http
        watch = watch or http.request_watch()
        if dicom is None:
            dicom = "application/dicom" in accept
        limits = self.size_limits
        check = self._dicom_check(url) if dicom else None
        with http.stream("GET", url, headers={"Accept": accept}, watch=watch) as response:
            content_type = response.headers.get("content-type", "")
            media_type, _ = (
                parse_content_type(content_type, server=self.server) if content_type else ("", {})
            )
            chunks = http.iter_body(response, watch, url)
            if not media_type.startswith("multipart/"):
                body = PartBuffer(
                    {"content-type": content_type} if content_type else {},
                    max_bytes=limits.part_bytes,
                    spool_bytes=limits.spool_bytes,
                    check=check,
                    server=self.server,
                )
                try:
                    for chunk in chunks:
                        body.add(chunk)
                    part = body.finish()
                except BaseException:
                    body.discard()
                    raise
                yield part
                return
            parser = MultipartParser(
                content_type,
                server=self.server,
                max_part_bytes=limits.part_bytes,
                spool_bytes=limits.spool_bytes,
                check_part=check,
            )
            try:
                for chunk in chunks:
                    yield from parser.feed(chunk)
            except BaseException:
                parser.abort()  # a spooled part's file goes now, not when collected
                raise
            parser.close()

    def _dicom_check(self, url: str) -> PartCheck:
        server = self.server
        where = url.split("?", 1)[0]

        def check(headers: Mapping[str, str], head: bytes) -> None:
            if not looks_like_dicom(head):
                raise _not_dicom(head, server=server, what=f"A part of the answer from {where}")

        return check

    def _iter_instances(self, url: str, *, stream: bool = True) -> Iterator[Dataset]:
        """Datasets from one streamed request; a dropped or stalled connection is
        resumed by asking again and skipping what was already delivered.

        A `stream` (series, study) has no total deadline but must keep making progress;
        otherwise (one instance) the request deadline applies.
        """
        delivered: set[str] = set()
        attempt = 0
        http = self._http
        while True:
            attempt += 1
            index = 0
            watch = http.stream_watch() if stream else http.request_watch()
            try:
                for part in self.iter_parts(url, ACCEPT_DICOM, watch=watch, dicom=True):
                    index += 1
                    ds = _parse_dataset(part, server=self.server, what=f"Part {index} of {url}")
                    uid = str(ds.get("SOPInstanceUID", "")) or f"#{index}"
                    if uid in delivered:
                        continue
                    delivered.add(uid)
                    yield ds
                return
            except DicomWebError as exc:
                broken = isinstance(exc, TransportError) and not isinstance(exc, TlsError)
                retry = http.retry
                if not (broken and stream and retry.may_retry("GET", attempt)):
                    raise
                wait = retry.delay(attempt)
                if wait is None:
                    raise
                log.info(
                    "%s: stream broke after %d parts (%s); resuming",
                    self.server,
                    len(delivered),
                    exc.message,
                )
                retry.sleep(wait)

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        """Every instance of a series, as pydicom datasets, while one response streams in."""
        yield from self._iter_instances(
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}"
        )

    def iter_series_parts(self, study_uid: str, series_uid: str) -> Iterator[Part]:
        """A series' parts (Part 10, unparsed) as they stream in, for callers that parse
        instances themselves (the series loader keeps pixels in the received buffer).

        Unlike `iter_series`, a dropped or stalled stream is not resumed here: the caller
        knows which instances it already has. Like it, there is no total deadline, only
        the progress rule (`Deadlines.progress_bytes` per `Deadlines.progress_window`).
        """
        yield from self.iter_parts(
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}",
            ACCEPT_DICOM,
            watch=self._http.stream_watch(),
        )

    def iter_study(self, study_uid: str) -> Iterator[Dataset]:
        yield from self._iter_instances(f"{self.wado_rs_root}/studies/{study_uid}")

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        url = f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        for ds in self._iter_instances(url, stream=False):
            return ds
        raise ProtocolError(f"The server sent no instance for {sop_uid}.", server=self.server)

    def retrieve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> list[Frame]:
        """Pixel data of the given 1-based frames, as stored (decode with `render`)."""
        if not frames:
            return []
        numbers = ",".join(str(int(n)) for n in frames)
        url = (
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}"
            f"/instances/{sop_uid}/frames/{numbers}"
        )
        parts = list(self.iter_parts(url, ACCEPT_FRAMES, dicom=False))
        if len(parts) != len(frames):
            raise ProtocolError(
                f"Asked for {len(frames)} frame(s) of {sop_uid}, got {len(parts)}.",
                server=self.server,
            )
        result = []
        for number, part in zip(frames, parts, strict=True):
            # Each part's own Content-Type (or the answer's `type`) names its syntax.
            media_type, params = parse_content_type(
                part.content_type or "application/octet-stream", server=self.server
            )
            result.append(
                Frame(
                    number=int(number),
                    data=part.body,
                    media_type=media_type,
                    transfer_syntax_uid=params.get("transfer-syntax", ""),
                )
            )
        return result

    # -- rendered images and thumbnails -----------------------------------------------

    def _image(self, url: str, params: dict[str, str], source: str) -> RenderedImage:
        response = self._http.request(
            "GET",
            url,
            params=params,
            headers={"Accept": "image/jpeg"},  # Orthanc 1.10 answers 400 to a list with q-values
            max_bytes=self.size_limits.image_bytes,
            what=f"The {source} image",
        )
        media_type = sniff_media_type(response.content, response.headers.get("content-type", ""))
        if not media_type.startswith("image/"):
            raise ProtocolError(
                f"{source} answer is not an image ({media_type}).", server=self.server
            )
        return RenderedImage(data=response.content, media_type=media_type, source=source)

    def rendered(
        self,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        *,
        frame: int | None = None,
        viewport: tuple[int, int] | None = None,
        window: tuple[float, float] | None = None,
        quality: int | None = None,
    ) -> RenderedImage:
        """A server-rendered image (PS3.18 §9.5 /rendered); `window` is (center, width)."""
        url = f"{self.wado_rs_root}/studies/{study_uid}"
        if series_uid:
            url += f"/series/{series_uid}"
            if sop_uid:
                url += f"/instances/{sop_uid}"
                if frame is not None:
                    url += f"/frames/{int(frame)}"
        params: dict[str, str] = {}
        if viewport:
            params["viewport"] = f"{int(viewport[0])},{int(viewport[1])}"
        if window:
            params["window"] = f"{window[0]:g},{window[1]:g},linear"
        if quality is not None:
            params["quality"] = str(int(quality))
        return self._image(url + "/rendered", params, "rendered")

    def thumbnail(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str | None = None,
        *,
        viewport: tuple[int, int] = (128, 128),
    ) -> RenderedImage:
        """A small picture of a series or instance: /thumbnail, else /rendered.

        Orthanc (and other servers) lack /thumbnail; the fallback is remembered, and a
        series that cannot be rendered as a whole falls back to its first instance.
        """
        base = f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}"
        if sop_uid:
            base += f"/instances/{sop_uid}"
        params = {"viewport": f"{viewport[0]},{viewport[1]}"}
        if self._thumbnail_endpoint in (None, "thumbnail"):
            try:
                image = self._image(base + "/thumbnail", params, "thumbnail")
                self._thumbnail_endpoint = "thumbnail"
                return image
            except (NotFound, ServerError) as exc:
                if exc.status_code not in (400, 404, 405, 406, 501):
                    raise
                self._thumbnail_endpoint = "rendered"
        try:
            return self._image(base + "/rendered", params, "rendered")
        except (NotFound, ServerError) as exc:
            if sop_uid or exc.status_code not in (400, 404, 405, 406, 501):
                raise
        instances = self.search_instances(study_uid, series_uid, limit=1)
        if not instances:
            raise NotFound(
                "The series has no instances to make a thumbnail of.", server=self.server
            )
        return self._image(
            f"{base}/instances/{instances[0].sop_instance_uid}/rendered", params, "rendered"
        )

    # -- WADO-URI -----------------------------------------------------------------------

    def wado_uri(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        *,
        content_type: str = "application/dicom",
        frame: int | None = None,
    ) -> Dataset | RenderedImage:
        """WADO-URI (PS3.18 §9.1): a DICOM dataset, or an image for image/jpeg|png|gif."""
        params = {
            "requestType": "WADO",
            "studyUID": study_uid,
            "seriesUID": series_uid,
            "objectUID": sop_uid,
            "contentType": content_type,
        }
        if content_type == "application/dicom":
            params["transferSyntax"] = "*"
        if frame is not None:
            params["frameNumber"] = str(int(frame))
        dicom = content_type == "application/dicom"
        response = self._http.request(
            "GET",
            self.wado_uri_root,
            params=params,
            headers={"Accept": content_type},
            max_bytes=self.size_limits.part_bytes if dicom else self.size_limits.image_bytes,
            what="The WADO-URI object",
        )
        data = response.content
        media_type = sniff_media_type(data, response.headers.get("content-type", ""))
        if media_type == "application/dicom" or content_type == "application/dicom":
            return _parse_dataset(data, server=self.server, what=f"WADO-URI object {sop_uid}")
        if not media_type.startswith("image/"):
            raise ProtocolError(
                f"WADO-URI answer is not an image ({media_type}).", server=self.server
            )
        return RenderedImage(data=data, media_type=media_type, source="wado-uri")

    # -- STOW-RS ----------------------------------------------------------------------

    def store(
        self, instances: Sequence[Dataset | bytes], study_uid: str | None = None
    ) -> StoreResult:
        """Store instances (PS3.18 §10.5) in one request; never retried (POST).

        The result says, per SOP Instance UID, what was stored and what failed.
        """
        bodies = []
        for item in instances:
            if isinstance(item, bytes):
                bodies.append(item)
                continue
            buffer = io.BytesIO()
            item.save_as(buffer, enforce_file_format=True)
            bodies.append(buffer.getvalue())
        body, content_type = encode_multipart(bodies, "application/dicom")
        url = f"{self.wado_rs_root}/studies" + (f"/{study_uid}" if study_uid else "")
        try:
            response = self._http.request(
                "POST",
                url,
                headers={"Content-Type": content_type, "Accept": ACCEPT_DICOM_JSON},
                content=body,
                what="The store answer",
                # Uploading a 32 MiB batch may take longer than a search: per-read
                # timeouts only, no total deadline.
                watch=Watch(),
            )
        except ServerError as exc:
            if exc.response is None or exc.status_code not in (409,):
                raise
            response = exc.response  # 409: every instance failed; the body says why
        if not response.content.strip():
            return StoreResult()
        try:
            attrs = msgspec.json.decode(response.content)
        except (msgspec.DecodeError, RecursionError, MemoryError) as exc:
            raise ProtocolError(
                f"The store answer is not DICOM JSON ({_brief(exc)}).", server=self.server
            ) from exc
        if isinstance(attrs, list):
            attrs = attrs[0] if attrs else {}
        if not isinstance(attrs, dict):
            raise ProtocolError("The store answer is not a DICOM JSON object.", server=self.server)
        return self._from_json(lambda: store_result_from_json(attrs), "store")


def _brief(exc: BaseException) -> str:
    """An exception as a short phrase for a message (a RecursionError's text is long)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, MemoryError):
        return "too large for memory"
    return str(exc)[:200] or type(exc).__name__
