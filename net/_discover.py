"""`discover`: look at a host and propose how to set it up as a DICOMweb server.

Users copy postfixes and options from a wiki; this asks the server instead. From
``https://host[:port]`` (or a URL pasted whole, as Google and Azure give them) it probes
a bounded set of known layouts — the Zhiva local PACS (``/zhiva/pacs`` + ``/zhiva/wado``),
Orthanc (``/dicom-web`` + ``/wado``), dcm4chee (``/dcm4chee-arc/aets``, then the AE titles
it lists), the generic ``/dicomweb`` and ``/wado-rs`` + ``/qido-rs`` — until one answers a
study search, then the options: include fields and fuzzy matching honoured, ``/thumbnail``
or ``/rendered`` only, series-level retrieve or the instance fallback, quoted or unquoted
multipart parameters, WADO-URI, the sign-in the server demands, and the Zhiva token
server at ``/auth``. Where the layouts and quirks are documented: docs/server-quirks.md.

It is bounded: at most `MAX_REQUESTS` requests and `MAX_SECONDS`, no retries, every
probe a GET; plain http is never tried; credentials, when the caller has them from the
user, go only to the host typed (`HttpSession` drops them on a redirect elsewhere). The
result is a proposal: the config with the fields it set named, and one line per
finding for the user to confirm.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import msgspec

from ._body import Watch
from ._config import (
    ServerConfig,
    origin_of,
    qido_root,
    validate_url,
    wado_rs_root,
    wado_uri_root,
)
from ._errors import DicomWebError, InsecureUrl
from ._http import HttpSession
from ._quirks import REFUSED_STATUSES, accept_header
from ._retry import RetryPolicy

__all__ = ["MAX_REQUESTS", "MAX_SECONDS", "Discovery", "Finding", "discover"]

MAX_REQUESTS = 25
MAX_SECONDS = 10.0
#: One probe never waits longer than this: a silent port must not eat the budget.
_PROBE_SECONDS = 4.0
#: AE titles of a dcm4chee archive tried at most (its default, DCM4CHEE, first).
_MAX_AE_TITLES = 4
_JSON = "application/dicom+json, application/json;q=0.9"
#: Probes read small answers only (a study or two of JSON, a login page).
_PROBE_BYTES = 4 * 1024 * 1024
#: Attributes a study list shows that servers may return only when asked by name.
_INCLUDE = ("00081030", "00080061", "00100040", "00201206", "00201208")

FindingStatus = Literal["found", "missing", "info", "warning"]


@dataclass(frozen=True)
class Finding:
    """One thing discovery found out; `field` names the config field it set, if any."""

    status: FindingStatus
    text: str
    field: str = ""

    def line(self) -> str:
        return f"[{self.status}] {self.text}"


@dataclass(frozen=True)
class Discovery:
    """What `discover` proposes for a host."""

    url: str
    #: The proposed server, or None when no DICOMweb service was found.
    config: ServerConfig | None
    #: The config fields discovery set (the form marks them for the user to check).
    fields: tuple[str, ...]
    findings: tuple[Finding, ...]
    #: The layout that answered ("Zhiva local PACS", "Orthanc", "dcm4chee (AET)"...).
    layout: str = ""
    requests: int = 0
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return self.config is not None

    def lines(self) -> list[str]:
        return [finding.line() for finding in self.findings]


@dataclass(frozen=True)
class _Layout:
    name: str
    #: Config fields that place it: url and the postfixes.
    place: Mapping[str, str]


@dataclass
class _Answer:
    status: int  # 0: no HTTP answer (refused, timed out, TLS)
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    error: DicomWebError | None = None

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return msgspec.json.decode(self.body)
        except (msgspec.DecodeError, RecursionError, MemoryError):
            return None

    def dicom_json_list(self) -> list[dict[str, Any]] | None:
        """The answer as a QIDO result list (204 is an empty one), else None."""
        if self.status == 204:
            return []
        if self.status != 200:
            return None
        body = self.json()
        if self.body.strip() == b"":
            return []
        if isinstance(body, list) and all(isinstance(item, dict) for item in body):
            return body
        return None


class _OutOfBudget(Exception):
    pass


class _Probe:
    """GETs within the request and time budget; an error status is an answer too."""

    def __init__(self, session: HttpSession, clock: Callable[[], float], deadline: float) -> None:
        self.session = session
        self.clock = clock
        self.deadline = deadline
        self.requests = 0

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        accept: str = _JSON,
        status_only: bool = False,
    ) -> _Answer:
        left = self.deadline - self.clock()
        if self.requests >= MAX_REQUESTS or left <= 0.2:
            raise _OutOfBudget
        self.requests += 1
        watch = Watch(total=min(left, _PROBE_SECONDS), clock=self.clock)
        headers = {"Accept": accept}
        session = self.session
        try:
            if status_only:
                # A whole series is not wanted: the status says whether it is offered.
                with session.stream("GET", url, params=params, headers=headers, watch=watch) as r:
                    return _Answer(r.status_code, r.headers)
            response = session.request(
                "GET", url, params=params, headers=headers, watch=watch,
                limit="discovery probe", max_bytes=_PROBE_BYTES,
            )  # fmt: skip
            return _Answer(response.status_code, response.headers, response.content)
        except DicomWebError as exc:
            if exc.response is None:
                return _Answer(0, error=exc)
            return _Answer(exc.response.status_code, exc.response.headers, b"", exc)


def _value(item: Mapping[str, Any], tag: str) -> Any:
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if isinstance(values, list) and values else None


def _text(item: Mapping[str, Any], tag: str) -> str:
    value = _value(item, tag)
    if isinstance(value, dict):
        value = value.get("Alphabetic", "")
    return str(value or "").strip()


def _challenge(answer: _Answer) -> str:
    """The sign-in a 401 asks for: "Basic", "Bearer", or "" when it did not say."""
    scheme = answer.headers.get("www-authenticate", "").strip().split(" ", 1)[0]
    return scheme.capitalize() if scheme.lower() in ("basic", "bearer") else ""


def _service_path(path: str) -> str:
    """A DICOMweb path cut before its resources: users paste the URL of a study list
    (``…/v2/studies``) or of one study as often as the service's root."""
    path = path.rstrip("/")
    cut = re.search(r"/(studies|series|instances)(/|$)", path)
    return path[: cut.start()] if cut else path


def _known_cloud(url: str) -> tuple[str, dict[str, Any], str] | None:
    """A cloud service's URL pasted whole: its DICOMweb root, what is known of it, a note."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = _service_path(parts.path)
    if host == "healthcare.googleapis.com":
        # Cut after /dicomWeb, not before /studies: a project or dataset may be named so.
        cut = parts.path.find("/dicomWeb")
        if cut >= 0:
            path = parts.path[: cut + len("/dicomWeb")]
        elif re.search(r"/dicomStores/[^/]+$", path):
            path += "/dicomWeb"  # the DICOM store's own URL, as the console shows it
        root = f"https://{parts.netloc}{path}"
        return (
            root,
            {"wado_uri_postfix": "", "thumbnail_rendering": "wadors"},
            "Google Cloud Healthcare: no WADO-URI and no /thumbnail (its conformance statement)",
        )
    if host.endswith(".dicom.azurehealthcareapis.com"):
        root = f"https://{parts.netloc}{path or '/v2'}"
        return (
            root,
            {"wado_uri_postfix": "", "thumbnail_rendering": "wadors"},
            "Azure DICOM service: no WADO-URI; limit at most 200 (handled)",
        )
    if host.startswith("dicom-medical-imaging.") and host.endswith(".amazonaws.com"):
        return (
            f"https://{parts.netloc}{path}",
            {"wado_uri_postfix": "", "series_retrieve": False, "thumbnail_rendering": "wadors"},
            "AWS HealthImaging: no series retrieve (instances one by one), frames in HTJ2K",
        )
    return None


class _Discoverer:
    def __init__(
        self, url: str, base: ServerConfig, probe: _Probe, *, have_credentials: bool
    ) -> None:
        self.url = url
        self.origin = origin_of(url)
        self.base = base
        self.probe = probe
        self.have_credentials = have_credentials
        self.findings: list[Finding] = []
        self.changes: dict[str, Any] = {}
        self.layout = ""
        #: The URL is a cloud service's: its sign-in is the cloud account's, not Zhiva's.
        self.cloud = False

    def note(self, status: FindingStatus, text: str, **changes: Any) -> None:
        self.changes.update(changes)
        self.findings.append(Finding(status, text, ",".join(changes)))

    def config(self, extra: Mapping[str, Any] | None = None) -> ServerConfig:
        return msgspec.structs.replace(self.base, **{**self.changes, **(extra or {})})

    # -- where the service is -------------------------------------------------------

    def candidates(self) -> Iterator[_Layout]:
        """The layouts to try, those the typed path points into first."""
        origin = self.origin
        path = urlsplit(self.url).path.rstrip("/")
        zhiva = _Layout(
            "Zhiva local PACS", {"url": f"{origin}/zhiva/pacs", "wado_uri_postfix": "/zhiva/wado"}
        )
        orthanc = _Layout("Orthanc", {"url": f"{origin}/dicom-web", "wado_uri_postfix": "/wado"})
        dicomweb = _Layout(
            "DICOMweb at /dicomweb", {"url": f"{origin}/dicomweb", "wado_uri_postfix": "/wado"}
        )
        split = _Layout(
            "DICOMweb at /wado-rs and /qido-rs",
            {"url": origin, "qido_postfix": "qido-rs", "wado_postfix": "wado-rs",
             "wado_uri_postfix": "/wado"},
        )  # fmt: skip
        groups: list[tuple[str, Callable[[], Iterator[_Layout]]]] = [
            ("/zhiva/pacs", lambda: iter([zhiva])),
            ("/dicom-web", lambda: iter([orthanc])),
            ("/dcm4chee-arc", self.dcm4chee),
            ("/dicomweb", lambda: iter([dicomweb])),
            ("/wado-rs", lambda: iter([split])),
        ]
        if path and path not in ("/zhiva/pacs", "/dicom-web", "/dicomweb"):
            yield _Layout("the URL as typed", {"url": self.url, "wado_uri_postfix": ""})

        def related(where: str) -> bool:
            return bool(path) and (where.startswith(path) or path.startswith(where))

        groups.sort(key=lambda group: not related(group[0]))  # stable: the rest keep order
        for _, layouts in groups:
            yield from layouts()

    def dcm4chee(self) -> Iterator[_Layout]:
        listing = self.probe.get(f"{self.origin}/dcm4chee-arc/aets", accept="application/json")
        if listing.status == 404 or listing.status == 0:
            return
        titles: list[str] = []
        body = listing.json() if listing.status == 200 else None
        if isinstance(body, list):
            for item in body:
                title = item.get("dicomAETitle") if isinstance(item, dict) else item
                if isinstance(title, str) and title.strip() and title not in titles:
                    titles.append(title.strip())
            self.note("info", f"dcm4chee archive: AE titles {', '.join(titles) or 'none'}")
        if not titles:
            titles = ["DCM4CHEE"]  # the listing is locked or empty: the default title
        titles.sort(key=lambda t: t != "DCM4CHEE")
        for title in titles[:_MAX_AE_TITLES]:
            yield _Layout(
                f"dcm4chee (AE title {title})",
                {
                    "url": f"{self.origin}/dcm4chee-arc",
                    "postfix": f"aets/{title}",
                    "qido_postfix": "rs",
                    "wado_postfix": "rs",
                    "wado_uri_postfix": "wado",
                },
            )

    def locate(self) -> tuple[ServerConfig, list[dict[str, Any]] | None] | None:
        """The first layout whose QIDO answers (its first study, or None if locked)."""
        cloud = _known_cloud(self.url)
        layouts: Iterator[_Layout]
        if cloud is not None:
            root, known, text = cloud
            self.cloud = True
            self.note("info", text, **known)
            layouts = iter([_Layout("the URL as typed", {"url": root})])
        else:
            layouts = self.candidates()
        for layout in layouts:
            place = {"postfix": "", "qido_postfix": "", "wado_postfix": "", **layout.place}
            config = self.config(place)
            answer = self.probe.get(f"{qido_root(config)}/studies", params={"limit": "1"})
            if answer.status == 0 and answer.error is not None:
                # Not reachable (refused, TLS, timeout): no other path of it will be.
                error = answer.error
                self.note("warning", f"{error.message} {error.hint}".strip())
                return None
            studies = answer.dicom_json_list()
            if studies is not None:
                self.layout = layout.name
                self.note("found", f"DICOMweb at {qido_root(config)} ({layout.name})", **place)
                return self.config(), studies
            if answer.status in (401, 403) and not self.have_credentials:
                # Locked: the layout is there, the rest needs the user's credentials.
                self.layout = layout.name
                self.note(
                    "found",
                    f"a DICOMweb service at {qido_root(config)} ({layout.name}) that needs sign-in",
                    **place,
                )
                self.sign_in(answer)
                self.note("info", "give the sign-in details and Detect again to check the options")
                return self.config(), None
            if answer.status in (401, 403):
                self.layout = layout.name
                self.note(
                    "warning",
                    f"{qido_root(config)} ({layout.name}) refused the credentials (HTTP {answer.status})",
                    **place,
                )
                self.sign_in(answer)
                return self.config(), None
        return None

    def sign_in(self, answer: _Answer) -> None:
        scheme = _challenge(answer)
        if scheme == "Basic":
            self.note("found", "sign-in: Basic (user name and password)", auth_type="basic")
            return
        if self.cloud:
            # No Zhiva token server on a cloud's host: nothing to look for there.
            self.note(
                "found",
                "sign-in: a Bearer access token of the cloud account (paste it as a token)",
                auth_type="token",
            )
            return
        auth = f"{self.origin}/auth"
        page = self.probe.get(f"{auth}/sign-in", accept="text/html")
        if page.status == 200 and b"<form" in page.body.lower():
            self.note(
                "found",
                f"sign-in: the Zhiva token server at {auth} (Zhiva login)",
                auth_type="zhiva",
                auth_server_url=auth,
            )
            return
        what = f"a {scheme} token" if scheme else "sign-in"
        self.note(
            "warning",
            f"the server wants {what}; paste a Zhiva token, or ask its administrator",
            auth_type="token",
        )

    # -- what it offers ---------------------------------------------------------------

    def options(self, config: ServerConfig, studies: list[dict[str, Any]]) -> None:
        qido = qido_root(config)
        if not self.have_credentials and "auth_type" not in self.changes:
            self.note("found", "no sign-in needed", auth_type="none")
        if not studies:
            self.note("info", "the server lists no studies: options that need one were not checked")
            return
        study = studies[0]
        study_uid = _text(study, "0020000D")
        self.note("found", "QIDO search answers at study level")
        self.include_fields(qido, study)
        self.fuzzy(qido, study)
        series = self.probe.get(
            f"{qido}/studies/{study_uid}/series", params={"limit": "1"}
        ).dicom_json_list()
        if not series:
            self.note("info", "the first study lists no series: retrieval was not checked")
            return
        series_uid = _text(series[0], "0020000E")
        instances = self.probe.get(
            f"{qido}/studies/{study_uid}/series/{series_uid}/instances", params={"limit": "1"}
        ).dicom_json_list()
        sop = _text(instances[0], "00080018") if instances else ""
        wado = f"{wado_rs_root(config)}/studies/{study_uid}/series/{series_uid}"
        if sop:
            self.quoting(f"{wado}/instances/{sop}/frames/1")
        self.series_retrieve(wado)
        self.thumbnails(wado, sop)
        if sop:
            self.wado_uri(self.config(), study_uid, series_uid, sop)

    def include_fields(self, qido: str, study: Mapping[str, Any]) -> None:
        answer = self.probe.get(
            f"{qido}/studies",
            params={"limit": "1", "StudyInstanceUID": _text(study, "0020000D"), "includefield": ",".join(_INCLUDE)},
        )  # fmt: skip
        found = answer.dicom_json_list()
        if found is None:
            self.note(
                "missing",
                f"include fields refused (HTTP {answer.status})",
                qido_supports_include_field=False,
            )
        elif found and any(tag in found[0] and tag not in study for tag in _INCLUDE):
            self.note("found", "include fields honoured", qido_supports_include_field=True)
        else:
            self.note(
                "missing",
                "include fields ignored (the answer was the same)",
                qido_supports_include_field=False,
            )

    def fuzzy(self, qido: str, study: Mapping[str, Any]) -> None:
        name = _text(study, "00100010").split("^")[0].strip()
        if len(name) < 3:
            self.note("info", "fuzzy matching: not checked (the first study has no patient name)")
            return
        # A fuzzy server finds a name from its first letters without a wildcard; an
        # exact-matching one finds nothing. Never the whole family name: servers that
        # match a name's components find "Doe" in "Doe^Peter" without any fuzziness.
        prefix = name[: min(3, len(name) - 1)]
        answer = self.probe.get(
            f"{qido}/studies",
            params={"limit": "1", "PatientName": prefix, "fuzzymatching": "true"},
        )
        found = answer.dicom_json_list()
        honoured = bool(found)
        self.note(
            "found" if honoured else "missing",
            "fuzzy matching honoured"
            if honoured
            else "fuzzy matching not honoured (wildcards are used)",
            fuzzy_matching=honoured,
        )

    def quoting(self, frames_url: str) -> None:
        for quoted in (True, False):
            accept = accept_header("frames", 0, quoted=quoted)
            answer = self.probe.get(frames_url, accept=accept, status_only=True)
            if answer.status == 200:
                if not quoted:
                    self.note(
                        "found",
                        "the server refuses quoted multipart parameters: sending them bare",
                        multipart_quotes=False,
                    )
                return
            if answer.status != 400:
                return  # not a quoting question (406, 404...): the client's ladder copes

    def series_retrieve(self, series_url: str) -> None:
        quoted = self.changes.get("multipart_quotes", self.base.multipart_quotes)
        answer = self.probe.get(
            series_url, accept=accept_header("dicom", 0, quoted=quoted), status_only=True
        )
        if answer.status == 200:
            self.note(
                "found", "series-level retrieve (one request per series)", series_retrieve=True
            )
        elif answer.status in REFUSED_STATUSES:
            self.note(
                "missing",
                f"no series-level retrieve (HTTP {answer.status}): instances will be fetched one by one",
                series_retrieve=False,
            )

    def thumbnails(self, series_url: str, sop: str) -> None:
        params = {"viewport": "64,64"}
        answer = self.probe.get(
            f"{series_url}/thumbnail", params=params, accept="image/jpeg", status_only=True
        )
        if answer.status == 200:
            self.note(
                "found", "/thumbnail: the server makes thumbnails", thumbnail_rendering="https"
            )
            return
        if not sop:
            return
        rendered = self.probe.get(
            f"{series_url}/instances/{sop}/rendered",
            params=params,
            accept="image/jpeg",
            status_only=True,
        )
        if rendered.status == 200:
            self.note(
                "info",
                "/rendered only (no /thumbnail): thumbnails are made here from a frame",
                thumbnail_rendering="wadors",
            )
        else:
            self.note(
                "missing",
                "neither /thumbnail nor /rendered: thumbnails are made here",
                thumbnail_rendering="wadors",
            )

    def wado_uri(self, config: ServerConfig, study: str, series: str, sop: str) -> None:
        if not config.wado_uri_postfix:
            return
        root = wado_uri_root(config)
        answer = self.probe.get(
            root,
            params={"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop,
                    "contentType": "application/dicom", "transferSyntax": "*"},
            accept="application/dicom", status_only=True,
        )  # fmt: skip
        if answer.status == 200:
            self.note("found", f"WADO-URI at {root}", wado_uri_postfix=config.wado_uri_postfix)
        else:
            self.note(
                "missing",
                f"no WADO-URI at {root} (HTTP {answer.status})",
                wado_uri_postfix="",
                image_rendering="wadors",
            )


def discover(
    url: str,
    *,
    base: ServerConfig | None = None,
    auth: httpx.Auth | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Discovery:
    """Probe `url` (``https://host[:port]``, or a DICOMweb URL pasted whole) and
    propose a server. `base` supplies what discovery does not decide (name, id, CA
    file, user name); `auth` is used only when the user gave credentials.

    Never raises for what the server does; an http:// URL raises `InsecureUrl`.
    """
    started = clock()
    typed = url.strip()
    if "://" not in typed:
        typed = "https://" + typed  # a bare host: https, never http
    typed = typed.rstrip("/")
    problem = validate_url(typed, what="The address")
    if problem:
        if typed.lower().startswith("http://"):
            raise InsecureUrl(problem, hint="Type https://; plain http is never tried.")
        return Discovery(url=typed, config=None, fields=(), findings=(Finding("warning", problem),))
    base = base or ServerConfig()
    probing = msgspec.structs.replace(
        base,
        name=base.name or origin_of(typed),
        url=typed,
        connect_timeout=min(base.connect_timeout, _PROBE_SECONDS),
    )
    session = HttpSession(probing, auth, transport=transport, retry=RetryPolicy(max_attempts=1))
    probe = _Probe(session, clock, started + MAX_SECONDS)
    finder = _Discoverer(typed, base, probe, have_credentials=auth is not None)
    located = None
    try:
        with session:
            located = finder.locate()
            if located is not None and located[1] is not None:
                finder.options(located[0], located[1])
    except _OutOfBudget:
        finder.note(
            "warning",
            f"stopped after {probe.requests} requests / {MAX_SECONDS:g} s; the rest was not checked",
        )
    except DicomWebError as exc:  # e.g. a TLS failure: nothing else will work either
        finder.note("warning", f"{exc.message} {exc.hint}".strip())
    if located is None and not any(f.status == "found" for f in finder.findings):
        finder.note(
            "missing", f"no DICOMweb service found at {origin_of(typed)} in the known layouts"
        )
        return Discovery(
            url=typed, config=None, fields=(), findings=tuple(finder.findings),
            requests=probe.requests, seconds=clock() - started,
        )  # fmt: skip
    config = finder.config()
    fields = tuple(name for name in finder.changes if getattr(config, name) != getattr(base, name))
    return Discovery(
        url=typed, config=config, fields=fields, findings=tuple(finder.findings),
        layout=finder.layout, requests=probe.requests, seconds=clock() - started,
    )  # fmt: skip
