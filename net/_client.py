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
import itertools
import logging
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, TypeVar

import httpx
import msgspec
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ._body import Watch
from ._config import ServerConfig, qido_root, wado_rs_root, wado_uri_root
from ._errors import (
    DicomWebError,
    NotFound,
    ProtocolError,
    ServerError,
    TlsError,
    TooManyResults,
    TransportError,
)
from ._fallback import (
    BULK_NEEDED,
    FALLBACK_IN_FLIGHT,
    PALETTE_TAGS,
    concurrently,
    frame_count,
    in_instance_order,
    lacks_palette,
    mark_pixel_data,
    pages,
    part10_from_frames,
    read_ahead,
    resolve_bulk_data_uri,
    sop_uid_of,
    url_safe_uid,
)
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
from ._quirks import (
    ACCEPT_STEPS,
    DECODABLE_SYNTAXES,
    REFUSED_STATUSES,
    RetrieveKind,
    accept_header,
    memory_of,
    multipart_type,
    syntax_of_media_type,
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
#: Instances listed per QIDO page when a series is fetched one by one (Azure's cap),
#: after a small first page that gets the first requests going.
INSTANCE_PAGE_SIZE = 200
LISTING_FIRST_PAGE = 32
#: What a server that refuses a larger ``limit`` is asked for next (Azure: 1..200).
CAPPED_LIMIT = 200
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


#: Attributes every server computes for a study or series it lists (PS3.18 Table
#: 10.6.3-3): absent, they were left out, not empty.
STUDY_COMPUTED = frozenset({"00080061", "00201206", "00201208"})


def _json_values(attrs: dict[str, Any], tag: str) -> list[Any]:
    element = attrs.get(tag)
    value = element.get("Value") if isinstance(element, dict) else None
    return value if isinstance(value, list) else []


def _json_int(attrs: dict[str, Any], tag: str) -> int | None:
    values = _json_values(attrs, tag)
    return _as_int(values[0]) if values else None


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


_Summary = TypeVar("_Summary")


def _filled_in(
    summaries: list[_Summary],
    items: list[dict[str, Any]],
    incomplete: Callable[[dict[str, Any]], bool],
    complete: Callable[[_Summary, dict[str, Any]], _Summary],
) -> list[_Summary]:
    """`summaries` with those whose QIDO answer was `incomplete` completed, a few at
    a time (each completion is a request or two)."""
    missing = [i for i, item in enumerate(items) if incomplete(item)]
    for i, summary in concurrently(missing, lambda i: (i, complete(summaries[i], items[i]))):
        summaries[i] = summary
    return summaries


def _int_param(params: dict[str, str], name: str) -> int:
    value = params.get(name, "")
    return int(value) if value.isdigit() else 0


class _Refused(Exception):
    """A retrieve the server does not offer (not one that failed): try another way."""

    def __init__(self, error: DicomWebError) -> None:
        super().__init__(str(error))
        self.error = error


def _refused(exc: DicomWebError) -> bool:
    return isinstance(exc, ServerError | NotFound) and exc.status_code in REFUSED_STATUSES


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
        transfer_syntaxes: Sequence[str] = DECODABLE_SYNTAXES,
        fallback_in_flight: int = FALLBACK_IN_FLIGHT,
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
        #: What this server was found to do differently, shared with its other clients.
        self._memory = memory_of(config)
        #: Listed in an Accept header when the server refuses ``transfer-syntax=*``.
        self._syntaxes = tuple(transfer_syntaxes)
        self._fallback_in_flight = fallback_in_flight
        #: Learned on first use: "thumbnail" or "rendered" (Orthanc has no /thumbnail).
        self._thumbnail_endpoint: str | None = None

    def close(self) -> None:
        self._http.close()

    @property
    def closed(self) -> bool:
        """Whether `close` was called: its connections are closed, it sends nothing."""
        return self._http.closed

    @property
    def auth(self) -> httpx.Auth | None:
        """How it signs in (a Zhiva token also says whether the user may store data)."""
        return self._http.auth

    def __enter__(self) -> DicomWebClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- QIDO-RS ----------------------------------------------------------------------

    def _qido(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """One QIDO request; a refused ``limit`` is asked again with the usual cap
        (remembered), and a refused page after the first means the server lists no
        more results for this search (`TooManyResults`)."""
        try:
            return self._qido_once(path, params)
        except ServerError as exc:
            if exc.status_code != 400:
                raise
            limit = _int_param(params, "limit")
            if limit > CAPPED_LIMIT:
                log.info("%s: limit %d refused; asking for %d", self.server, limit, CAPPED_LIMIT)
                with self._memory.lock:
                    self._memory.limit_cap = CAPPED_LIMIT
                return self._qido_once(path, {**params, "limit": str(CAPPED_LIMIT)})
            offset = _int_param(params, "offset")
            if offset > 0:
                raise TooManyResults(
                    f"The server lists no more than {offset} results for a search.",
                    server=self.server,
                    hint="Narrow the search (a name, a date range, a modality).",
                    shown=offset,
                    request=exc.request,
                    response=exc.response,
                ) from exc
            raise

    def _qido_once(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
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
            params["limit"] = str(self._page_limit(limit))
        if offset:
            params["offset"] = str(offset)

    def _page_limit(self, limit: int) -> int:
        """`limit`, or the server's cap when it refused a larger one before."""
        cap = self._memory.limit_cap
        return min(limit, cap) if cap is not None else limit

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
        """One page of studies matching `query`.

        A server that leaves out the attributes the study list shows (Azure answers
        only its default set when include fields are not honoured) gets them filled in
        from each study's series.
        """
        params = self.study_query_params(query or StudyQuery())
        self._paging(params, limit, offset)
        items = self._qido("studies", params)
        studies = self._from_json(lambda: [study_from_json(item) for item in items], "search")
        return _filled_in(
            studies, items, lambda item: not item.keys() >= STUDY_COMPUTED, self._complete_study
        )

    def _complete_study(self, study: StudySummary, attrs: dict[str, Any]) -> StudySummary:
        """Modalities and counts of a study whose QIDO answer lacked them."""
        if not url_safe_uid(study.study_uid):
            return study  # nothing can be asked about it
        series = self._qido(f"studies/{study.study_uid}/series", {})
        changes: dict[str, Any] = {}
        if "00080061" not in attrs:
            found = {str(v) for item in series for v in _json_values(item, "00080060") if v}
            changes["modalities"] = tuple(sorted(found))
        if "00201206" not in attrs:
            changes["series_count"] = len(series)
        if "00201208" not in attrs:
            counts = [_json_int(item, "00201209") for item in series]
            if all(c is not None for c in counts):
                changes["instance_count"] = sum(c or 0 for c in counts)
            else:
                instances = self._qido(f"studies/{study.study_uid}/instances", {})
                changes["instance_count"] = len(instances)
        return msgspec.structs.replace(study, **changes)

    def iter_studies(
        self,
        query: StudyQuery | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_results: int = 1000,
    ) -> Iterator[StudySummary]:
        """All matching studies, page by page, each once (see `net._fallback.pages`:
        servers that ignore ``offset`` or ``limit``, repeat results or answer 204).

        Orthanc can list one Study Instance UID twice (two patients sharing it in
        pydicom's test files); a study list keyed by UID shows it once.
        """
        yield from pages(
            lambda limit, offset: self.search_studies(query, limit=limit, offset=offset),
            key=lambda study: study.study_uid,
            page_size=lambda: self._page_limit(page_size),
            max_results=max_results,
        )

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
        series = self._from_json(
            lambda: [series_from_json(item, study_uid) for item in items], "search"
        )
        # Orthanc and most servers always count a series' instances; a server that does
        # not (Azure without honoured include fields) also left out its description.
        return _filled_in(series, items, lambda item: "00201209" not in item, self._complete_series)

    def _complete_series(self, series: SeriesSummary, attrs: dict[str, Any]) -> SeriesSummary:
        """What a series' QIDO answer lacked, from its instance list and the WADO-RS
        metadata of its first instance."""
        if not (url_safe_uid(series.study_uid) and url_safe_uid(series.series_uid)):
            return series
        instances = list(
            pages(
                lambda limit, offset: self.search_instances(
                    series.study_uid, series.series_uid, limit=limit, offset=offset
                ),
                key=lambda item: item.sop_instance_uid,
                page_size=lambda: self._page_limit(INSTANCE_PAGE_SIZE),
            )
        )
        changes: dict[str, Any] = {"instance_count": len(instances)}
        instances = [i for i in instances if url_safe_uid(i.sop_instance_uid)]
        if instances:
            first = min(
                instances, key=lambda i: (i.instance_number is None, i.instance_number or 0)
            )
            header = self.instance_metadata(
                series.study_uid, series.series_uid, first.sop_instance_uid
            )
            fields = {
                "00080060": ("modality", str(header.get("Modality", "") or "")),
                "0008103E": ("description", str(header.get("SeriesDescription", "") or "")),
                "00180015": ("body_part", str(header.get("BodyPartExamined", "") or "")),
                "00200011": ("series_number", _as_int(header.get("SeriesNumber"))),
            }
            for tag, (name, value) in fields.items():
                if tag not in attrs:
                    changes[name] = value
        return msgspec.structs.replace(series, **changes)

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
        if response.status_code == 204 or not response.content.strip():
            return []
        try:
            items = msgspec.json.decode(response.content)
        except (msgspec.DecodeError, RecursionError, MemoryError) as exc:
            raise ProtocolError(
                f"The metadata answer is not DICOM JSON ({_brief(exc)}).", server=self.server
            ) from exc
        if not isinstance(items, list):
            raise ProtocolError("The metadata answer is not a list.", server=self.server)

        def bulk(tag: str, vr: str, uri: str) -> bytes:
            # Pixel data is not fetched here (the loader asks for frames); the few
            # bulk elements a picture needs besides it (palette colour tables) are.
            if tag.upper() not in BULK_NEEDED:
                return b""
            return self._bulk_data(uri, url)

        datasets = []
        for item in items:
            try:
                ds = Dataset.from_json(item, bulk_data_uri_handler=bulk)
            except DicomWebError:
                raise
            except Exception as exc:  # pydicom's many kinds, RecursionError, MemoryError
                raise ProtocolError(
                    f"Unreadable metadata item ({_brief(exc)}).", server=self.server
                ) from exc
            if lacks_palette(ds):
                self._palette_from_instance(ds)
            mark_pixel_data(ds)
            datasets.append(ds)
        return datasets

    def _palette_from_instance(self, ds: Dataset) -> None:
        """Palette colour tables for metadata that left them out (Azure omits every
        OB/OW element): from the instance itself, the one place that has them."""
        uids = [str(ds.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID")]
        sop = sop_uid_of(ds)
        if not all(uids) or not sop:
            return
        log.info("%s: metadata without its palette; reading it from the instance", self.server)
        instance = self.retrieve_instance(uids[0], uids[1], sop)
        for tag in PALETTE_TAGS:
            if tag in instance:
                ds[tag] = instance[tag]

    def _bulk_data(self, uri: str, request_url: str) -> bytes:
        """The value behind a BulkDataURI, fetched only from this server's own roots."""
        target = resolve_bulk_data_uri(uri, request_url, self.wado_rs_root)
        if target is None:
            log.info("%s: a BulkDataURI outside the server's roots was ignored", self.server)
            return b""
        accept = multipart_type("application/octet-stream", [], quoted=self.config.multipart_quotes)
        parts = list(self.iter_parts(target, accept))  # to the end: the connection is reused
        return parts[0].body if parts else b""

    def study_metadata(self, study_uid: str) -> list[Dataset]:
        """Metadata (no pixel data) of every instance of a study, in one request."""
        return self._metadata(f"{self.wado_rs_root}/studies/{study_uid}/metadata")

    def series_metadata(self, study_uid: str, series_uid: str) -> list[Dataset]:
        """Metadata (no pixel data) of every instance of one series (lazy load)."""
        return self._metadata(
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}/metadata"
        )

    def instance_metadata(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """Metadata (no pixel data) of one instance."""
        url = (
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}"
            f"/instances/{sop_uid}/metadata"
        )
        for ds in self._metadata(url):
            return ds
        raise NotFound(f"The server has no metadata for {sop_uid}.", server=self.server)

    # -- WADO-RS retrieval ------------------------------------------------------------

    def iter_parts(
        self, url: str, accept: str, *, watch: Watch | None = None, dicom: bool | None = None
    ) -> Generator[Part, None, None]:
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

    def accept(self, kind: RetrieveKind) -> str:
        """The Accept header this client sends for a retrieve of `kind` (as learned)."""
        return accept_header(
            kind,
            self._memory.accept_step[kind],
            quoted=self.config.multipart_quotes,
            syntaxes=self._syntaxes,
        )

    def _negotiated_parts(
        self, url: str, kind: RetrieveKind, *, stream: bool = False
    ) -> Generator[Part, None, None]:
        """Parts of one retrieve, stepping down the Accept ladder on 406.

        A server that refuses ``transfer-syntax=*`` is asked for the syntaxes the viewer
        decodes, then for its default; the step that worked is remembered for the server.
        A `stream` (series, study) has no total deadline, only the progress rule; one
        instance or a few frames get the request deadline.
        """
        memory = self._memory
        http = self._http
        step = memory.accept_step[kind]
        while True:
            accept = accept_header(
                kind, step, quoted=self.config.multipart_quotes, syntaxes=self._syntaxes
            )
            watch = http.stream_watch() if stream else http.request_watch()
            parts = self.iter_parts(url, accept, watch=watch, dicom=kind == "dicom")
            try:
                first = next(parts, None)
            except ServerError as exc:
                if exc.status_code == 406 and step + 1 < len(ACCEPT_STEPS):
                    step += 1
                    log.info(
                        "%s: 406 for a %s retrieve; asking for %s transfer syntaxes next",
                        self.server, kind, ACCEPT_STEPS[step],
                    )  # fmt: skip
                    continue
                raise
            break
        if step != memory.accept_step[kind]:
            with memory.lock:
                memory.accept_step[kind] = max(memory.accept_step[kind], step)
        try:
            if first is not None:
                yield first
                yield from parts
        finally:
            parts.close()

    @property
    def retrieves_series(self) -> bool:
        """Whether whole series are asked for in one request (else instance by instance)."""
        return self.config.series_retrieve and self._memory.series_retrieve

    def _series_url(self, study_uid: str, series_uid: str) -> str:
        return f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}"

    def _iter_instances(
        self, url: str, *, stream: bool = True, refusable: bool = False
    ) -> Iterator[Dataset]:
        """Datasets from one streamed request; a dropped or stalled connection is
        resumed by asking again and skipping what was already delivered.

        A `stream` (series, study) has no total deadline but must keep making progress.
        `refusable`: a refusal (`REFUSED_STATUSES`) before anything arrived raises
        `_Refused`, so the caller can fetch the instances one by one instead.
        """
        delivered: set[str] = set()
        attempt = 0
        http = self._http
        while True:
            attempt += 1
            index = 0
            try:
                for part in self._negotiated_parts(url, "dicom", stream=stream):
                    index += 1
                    ds = _parse_dataset(part, server=self.server, what=f"Part {index} of {url}")
                    uid = str(ds.get("SOPInstanceUID", "")) or f"#{index}"
                    if uid in delivered:
                        continue
                    delivered.add(uid)
                    yield ds
                return
            except DicomWebError as exc:
                if refusable and not index and not delivered and _refused(exc):
                    raise _Refused(exc) from exc
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
        """Every instance of a series, as pydicom datasets, while one response streams in.

        On a server without series-level retrieve the instances come from concurrent
        instance (or frame) requests instead, in the order they arrive.
        """
        if self.retrieves_series:
            try:
                yield from self._iter_instances(
                    self._series_url(study_uid, series_uid), refusable=True
                )
            except _Refused as refused:
                self._log_refusal(refused.error)
                parts = self._instances_one_by_one(study_uid, series_uid, refused.error)
            else:
                return
        else:
            parts = self._instances_one_by_one(study_uid, series_uid)
        for index, part in enumerate(parts, 1):
            yield _parse_dataset(part, server=self.server, what=f"Instance {index} of the series")

    def iter_series_parts(self, study_uid: str, series_uid: str) -> Iterator[Part]:
        """A series' parts (Part 10, unparsed) as they stream in, for callers that parse
        instances themselves (the series loader keeps pixels in the received buffer).

        Unlike `iter_series`, a dropped or stalled stream is not resumed here: the caller
        knows which instances it already has. Like it, there is no total deadline, only
        the progress rule (`Deadlines.progress_bytes` per `Deadlines.progress_window`).
        A server that refuses series-level retrieve
        (AWS HealthImaging, static DICOMweb) gets concurrent instance requests instead —
        the same parts, in arrival order — and is remembered as such.
        """
        if self.retrieves_series:
            parts = self._negotiated_parts(
                self._series_url(study_uid, series_uid), "dicom", stream=True
            )
            try:
                first = next(parts, None)
            except DicomWebError as exc:
                if not _refused(exc):
                    raise
                self._log_refusal(exc)
                yield from self._instances_one_by_one(study_uid, series_uid, exc)
                return
            try:
                if first is not None:
                    yield first
                    yield from parts
            finally:
                parts.close()
            return
        yield from self._instances_one_by_one(study_uid, series_uid)

    def _log_refusal(self, exc: DicomWebError) -> None:
        log.info(
            "%s: series retrieve refused (HTTP %s); fetching instance by instance",
            self.server, exc.status_code,
        )  # fmt: skip

    def _instances_one_by_one(
        self, study_uid: str, series_uid: str, refused: DicomWebError | None = None
    ) -> Iterator[Part]:
        """Every instance of a series by concurrent requests, yielded as they arrive.

        The instances are listed by QIDO a page at a time (else by the series'
        metadata), so the first requests go out after the first small page rather than
        after the whole list; each page in instance number order. `fallback_in_flight`
        requests are kept open (bench/retrieve.py measured the number). `refused`: the
        series retrieve's refusal, remembered for the server once instances are found
        (a 404 for a series that does not exist is raised as it was).
        """
        headers: dict[str, Dataset] = {}
        sops: Iterator[str]
        if self._memory.instance_retrieve:
            sops = read_ahead(self._listed_instances(study_uid, series_uid))
        else:
            # Frames only (static DICOMweb): the metadata is needed to rebuild instances.
            headers = {sop_uid_of(ds): ds for ds in self.series_metadata(study_uid, series_uid)}
            sops = iter(in_instance_order(list(headers.values())))
        first = next(sops, None)
        if first is None:
            raise refused or NotFound(
                "The server lists no instances in this series.", server=self.server
            )
        if refused is not None and self._memory.series_retrieve:
            with self._memory.lock:
                self._memory.series_retrieve = False  # the next series comes this way at once
        yield from concurrently(
            itertools.chain([first], sops),
            lambda sop: self._instance_part(study_uid, series_uid, sop, headers.get(sop)),
            self._fallback_in_flight,
        )

    def _listed_instances(self, study_uid: str, series_uid: str) -> Iterator[str]:
        """SOP Instance UIDs of a series, by QIDO pages that grow (listing 300 instances
        took Orthanc ~0.25 s, 32 of them ~0.04 s), else from the series' metadata.

        Each page at most doubles: read ahead (`read_ahead`), a page then arrives
        before the instances of the one before have all been fetched, so the requests
        in flight never wait for the listing (a 32-instance page then a 200 one left
        them idle ~0.1 s of a ~1 s series on the test PACS)."""
        planned = (LISTING_FIRST_PAGE, 2 * LISTING_FIRST_PAGE, 4 * LISTING_FIRST_PAGE)
        fetched = 0

        def page_size() -> int:
            # Asked before each page and after it (a cap learned on it): counts pages.
            size = planned[fetched] if fetched < len(planned) else INSTANCE_PAGE_SIZE
            return self._page_limit(size)

        def fetch(limit: int, offset: int) -> list[InstanceSummary]:
            nonlocal fetched
            fetched += 1
            found = self.search_instances(study_uid, series_uid, limit=limit, offset=offset)
            return sorted(found, key=lambda i: (i.instance_number is None, i.instance_number or 0))

        listing = pages(fetch, key=lambda item: item.sop_instance_uid, page_size=page_size)
        try:
            first = next(listing, None)
        except DicomWebError as exc:
            log.info("%s: instances not listed by QIDO (%s); using metadata", self.server, exc)
            first = None
        if first is None:
            yield from in_instance_order(self.series_metadata(study_uid, series_uid))
            return
        for item in itertools.chain([first], listing):
            if not url_safe_uid(item.sop_instance_uid):
                raise ProtocolError(
                    "The server listed an instance whose UID cannot be asked for "
                    f"({item.sop_instance_uid[:40]!r}).",
                    server=self.server,
                )
            yield item.sop_instance_uid

    def _instance_part(
        self, study_uid: str, series_uid: str, sop_uid: str, header: Dataset | None = None
    ) -> Part:
        """One instance as a Part 10 part: retrieved, else rebuilt from its frames."""
        if self._memory.instance_retrieve:
            url = f"{self._series_url(study_uid, series_uid)}/instances/{sop_uid}"
            try:
                # Read to the end: a response left half-read closes its connection, and
                # a new TLS handshake per instance cost more than the instance here.
                parts = list(self._negotiated_parts(url, "dicom"))
                if not parts:
                    raise ProtocolError(
                        f"The server sent no instance for {sop_uid}.", server=self.server
                    )
                return parts[0]
            except DicomWebError as exc:
                if not _refused(exc):
                    raise
                log.info(
                    "%s: instance retrieve refused (HTTP %s); rebuilding instances from frames",
                    self.server, exc.status_code,
                )  # fmt: skip
                with self._memory.lock:
                    self._memory.instance_retrieve = False
        body = self._part10_from_frames(study_uid, series_uid, sop_uid, header)
        return Part(headers={"content-type": "application/dicom"}, body=body)

    def _part10_from_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, header: Dataset | None
    ) -> bytes:
        """A Part 10 instance made of its metadata and its frames (static DICOMweb)."""
        if header is None:
            header = self.instance_metadata(study_uid, series_uid, sop_uid)
        count = frame_count(header)
        frames = self.retrieve_frames(study_uid, series_uid, sop_uid, range(1, count + 1))
        try:
            return part10_from_frames(header, frames)
        except ValueError as exc:
            raise ProtocolError(
                f"Instance {sop_uid} cannot be rebuilt from its frames ({exc}).",
                server=self.server,
            ) from exc

    def iter_study(self, study_uid: str) -> Iterator[Dataset]:
        yield from self._iter_instances(f"{self.wado_rs_root}/studies/{study_uid}")

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        part = self._instance_part(study_uid, series_uid, sop_uid)
        return _parse_dataset(part, server=self.server, what=f"Instance {sop_uid}")

    def retrieve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Iterable[int]
    ) -> list[Frame]:
        """Pixel data of the given 1-based frames, as stored (decode with `render`)."""
        numbers = [int(n) for n in frames]
        if not numbers:
            return []
        url = (
            f"{self.wado_rs_root}/studies/{study_uid}/series/{series_uid}"
            f"/instances/{sop_uid}/frames/{','.join(str(n) for n in numbers)}"
        )
        parts = list(self._negotiated_parts(url, "frames"))
        if len(parts) != len(numbers):
            raise ProtocolError(
                f"Asked for {len(numbers)} frame(s) of {sop_uid}, got {len(parts)}.",
                server=self.server,
            )
        result = []
        for number, part in zip(numbers, parts, strict=True):
            # Each part's own Content-Type (or the answer's `type`) names its syntax.
            media_type, params = parse_content_type(
                part.content_type or "application/octet-stream", server=self.server
            )
            # A part may name only its media type (image/jphc from AWS HealthImaging).
            syntax = params.get("transfer-syntax", "") or syntax_of_media_type(media_type)
            result.append(
                Frame(
                    number=number,
                    data=part.body,
                    media_type=media_type,
                    transfer_syntax_uid=syntax,
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
            limit="image_bytes",
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
            limit="part_bytes" if dicom else "image_bytes",
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
        body, encoded_type = encode_multipart(bodies, "application/dicom")
        _, params = parse_content_type(encoded_type)
        content_type = multipart_type(
            "application/dicom",
            [("boundary", params["boundary"])],
            quoted=self.config.multipart_quotes,
        )
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
