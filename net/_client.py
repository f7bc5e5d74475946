"""`DicomWebClient`: QIDO-RS, WADO-RS, WADO-URI and STOW-RS against one server.

Built on `HttpSession` (TLS, retries, redirects, error mapping). Whole series arrive as
one streamed multipart/related response parsed as it comes in — on this kind of
machine one large streamed request is much faster than one request per instance
(DESIGN.md §5). Compressed data is requested as stored (`transfer-syntax=*`) and
decoded locally, since servers such as Orthanc cannot transcode JPEG 2000.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import httpx
import msgspec
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ._config import ServerConfig, qido_root, wado_rs_root, wado_uri_root
from ._errors import DicomWebError, NotFound, ProtocolError, ServerError
from ._http import _RETRIABLE_TRANSPORT, HttpSession
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
from ._multipart import MultipartParser, Part, encode_multipart, parse_content_type
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
    ) -> None:
        self.config = config
        self._http = HttpSession(config, auth, transport=transport, retry=retry)
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
            "GET", url, params=params, headers={"Accept": ACCEPT_DICOM_JSON}
        )
        if response.status_code == 204 or not response.content.strip():
            return []
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            raise ProtocolError(
                f"The search answer is not DICOM JSON ({exc}).",
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
        return [study_from_json(item) for item in self._qido("studies", params)]

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
        return [series_from_json(item, study_uid) for item in items]

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
        return [instance_from_json(item, study_uid, series_uid) for item in items]

    # -- WADO-RS metadata -------------------------------------------------------------

    def _metadata(self, url: str) -> list[Dataset]:
        response = self._http.request("GET", url, headers={"Accept": ACCEPT_DICOM_JSON})
        try:
            items = msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            raise ProtocolError(
                f"The metadata answer is not DICOM JSON ({exc}).", server=self.server
            ) from exc
        if not isinstance(items, list):
            raise ProtocolError("The metadata answer is not a list.", server=self.server)
        datasets = []
        for item in items:
            try:
                # Bulk data (pixel data) is not fetched here: the loader asks for frames.
                datasets.append(Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b""))
            except Exception as exc:
                raise ProtocolError(
                    f"Unreadable metadata item ({exc}).", server=self.server
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

    def iter_parts(self, url: str, accept: str) -> Iterator[Part]:
        """Parts of one multipart/related response as they stream in."""
        with self._http.stream("GET", url, headers={"Accept": accept}) as response:
            content_type = response.headers.get("content-type", "")
            media_type, _ = parse_content_type(content_type) if content_type else ("", {})
            encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
            chunks: Iterable[bytes] = (
                response.iter_bytes() if encoded else response.iter_raw(STREAM_CHUNK_SIZE)
            )
            try:
                if not media_type.startswith("multipart/"):
                    # A single-part answer (some servers, or one instance): the body is the part.
                    body = b"".join(chunks)
                    yield Part(headers={"content-type": content_type}, body=body)
                    return
                parser = MultipartParser(content_type)
                for chunk in chunks:
                    yield from parser.feed(chunk)
                parser.close()
            except httpx.HTTPError as exc:
                raise self._http.map_error(exc, url) from exc

    def _iter_instances(self, url: str) -> Iterator[Dataset]:
        """Datasets from one streamed request; a dropped connection is resumed by
        asking again and skipping what was already delivered."""
        delivered: set[str] = set()
        attempt = 0
        while True:
            attempt += 1
            index = 0
            try:
                for part in self.iter_parts(url, ACCEPT_DICOM):
                    index += 1
                    ds = _parse_dataset(part, server=self.server, what=f"Part {index} of {url}")
                    uid = str(ds.get("SOPInstanceUID", "")) or f"#{index}"
                    if uid in delivered:
                        continue
                    delivered.add(uid)
                    yield ds
                return
            except DicomWebError as exc:
                cause = exc.__cause__
                dropped = isinstance(cause, _RETRIABLE_TRANSPORT)
                retry = self._http.retry
                if not (dropped and retry.may_retry("GET", attempt)):
                    raise
                wait = retry.delay(attempt)
                if wait is None:
                    raise
                log.info("%s: stream dropped after %d parts; resuming", self.server, len(delivered))
                retry.sleep(wait)

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        """Every instance of a series, as pydicom datasets, while one response streams in."""
        yield from self._iter_instances(
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}"
        )

    def iter_series_parts(self, study_uid: str, series_uid: str) -> Iterator[Part]:
        """A series' parts (Part 10, unparsed) as they stream in, for callers that parse
        instances themselves (the series loader keeps pixels in the received buffer).

        Unlike `iter_series`, a dropped stream is not resumed here: the caller knows
        which instances it already has.
        """
        yield from self.iter_parts(
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}", ACCEPT_DICOM
        )

    def iter_study(self, study_uid: str) -> Iterator[Dataset]:
        yield from self._iter_instances(f"{self.wado_rs_root}/studies/{study_uid}")

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        url = f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        for ds in self._iter_instances(url):
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
        parts = list(self.iter_parts(url, ACCEPT_FRAMES))
        if len(parts) != len(frames):
            raise ProtocolError(
                f"Asked for {len(frames)} frame(s) of {sop_uid}, got {len(parts)}.",
                server=self.server,
            )
        result = []
        for number, part in zip(frames, parts, strict=True):
            media_type, params = parse_content_type(part.content_type or "application/octet-stream")
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
        response = self._http.request(
            "GET", self.wado_uri_root, params=params, headers={"Accept": content_type}
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
            )
        except ServerError as exc:
            if exc.response is None or exc.status_code not in (409,):
                raise
            response = exc.response  # 409: every instance failed; the body says why
        if not response.content.strip():
            return StoreResult()
        try:
            attrs = msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            raise ProtocolError(
                f"The store answer is not DICOM JSON ({exc}).", server=self.server
            ) from exc
        if isinstance(attrs, list):
            attrs = attrs[0] if attrs else {}
        if not isinstance(attrs, dict):
            raise ProtocolError("The store answer is not a DICOM JSON object.", server=self.server)
        return store_result_from_json(attrs)
