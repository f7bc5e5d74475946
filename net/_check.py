"""`check_server`: the connection test shared by the CLI and Settings > Servers.

Each check says pass, fail or not applicable, which fallback the viewer will use, and
on failure the fix to try. Checks that depend on an earlier one that failed are
reported as not applicable rather than failing again for the same cause. Whatever a
server sends, `check_server` returns a result: it never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, TypeVar

import httpx
import msgspec

from ._client import DicomWebClient
from ._config import ServerConfig
from ._errors import (
    AuthError,
    DicomWebError,
    NotFound,
    ProtocolError,
    ServerError,
    TlsError,
    TransportError,
)
from ._fields import validate_config
from ._limits import DEFAULT_DEADLINES, DEFAULT_SIZE_LIMITS, Deadlines, SizeLimits
from ._models import SeriesSummary, StudySummary
from ._retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["CheckResult", "CheckStatus", "ServerCheck", "check_server"]

log = logging.getLogger("net.check")

CheckStatus = Literal["pass", "fail", "n/a"]
T = TypeVar("T")


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    status: CheckStatus
    detail: str = ""
    fallback: str = ""
    fix: str = ""
    latency_ms: float | None = None

    def line(self) -> str:
        """One line for the CLI: ``[pass] QIDO search: 3 studies (12 ms)``."""
        text = f"[{self.status}] {self.name}"
        if self.detail:
            text += f": {self.detail}"
        if self.latency_ms is not None:
            text += f" ({self.latency_ms:.0f} ms)"
        if self.fallback:
            text += f" — will use {self.fallback}"
        if self.fix:
            text += f" — fix: {self.fix}"
        return text


class ServerCheck(msgspec.Struct, frozen=True, kw_only=True):
    server: str
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.results)


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1000


def _fail(name: str, exc: DicomWebError, ms: float | None = None) -> CheckResult:
    return CheckResult(name=name, status="fail", detail=exc.message, fix=exc.hint, latency_ms=ms)


def check_server(
    config: ServerConfig,
    auth: httpx.Auth | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    size_limits: SizeLimits = DEFAULT_SIZE_LIMITS,
    deadlines: Deadlines = DEFAULT_DEADLINES,
) -> ServerCheck:
    """Run every check against `config`; never raises for anything a server sends."""
    name = config.name or config.url
    invalid = validate_config(config)
    if invalid:
        detail = "; ".join(f"{field}: {msg}" for field, msg in invalid.items())
        return ServerCheck(
            server=name,
            results=(
                CheckResult(
                    name="settings",
                    status="fail",
                    detail=detail,
                    fix="Correct the fields marked in the form.",
                ),
            ),
        )
    results: list[CheckResult] = []
    try:
        client = DicomWebClient(
            config,
            auth,
            transport=transport,
            retry=retry,
            size_limits=size_limits,
            deadlines=deadlines,
        )
    except DicomWebError as exc:
        return ServerCheck(server=name, results=(_fail("settings", exc),))
    try:
        with client:
            results.extend(_connection_checks(client, config, auth))
            if any(r.status == "fail" for r in results):
                later = ("include-field", "thumbnails", "WADO retrieval")
                results.extend(
                    CheckResult(name=n, status="n/a", detail="skipped: an earlier check failed")
                    for n in later
                )
                return ServerCheck(server=name, results=tuple(results))
            results.extend(_feature_checks(client, config))
    except Exception as exc:  # a bug of ours that an answer exposed: reported, not raised
        log.exception("check_server: unexpected failure")
        error = ProtocolError(
            f"The check stopped on an unexpected answer ({type(exc).__name__}).",
            hint="Report this to the Zhiva Viewer developers, with the log.",
        )
        results.append(_fail("unexpected answer", error))
    return ServerCheck(server=name, results=tuple(results))


def _connection_checks(
    client: DicomWebClient, config: ServerConfig, auth: httpx.Auth | None
) -> list[CheckResult]:
    """reachable, TLS, signed in and QIDO, all from one search request."""
    out: list[CheckResult] = []
    start = time.perf_counter()
    try:
        studies = client.search_studies(limit=1)
    except TlsError as exc:
        ms = (time.perf_counter() - start) * 1000
        out.append(
            CheckResult(
                name="reachable", status="pass", detail="the server answered", latency_ms=ms
            )
        )
        out.append(_fail("TLS", exc))
        return out + [
            CheckResult(name=n, status="n/a", detail="skipped: TLS failed")
            for n in ("signed in", "QIDO search")
        ]
    except TransportError as exc:
        ms = (time.perf_counter() - start) * 1000
        out.append(_fail("reachable", exc, ms))
        return out + [
            CheckResult(name=n, status="n/a", detail="skipped: not reachable")
            for n in ("TLS", "signed in", "QIDO search")
        ]
    except AuthError as exc:
        ms = (time.perf_counter() - start) * 1000
        out.append(CheckResult(name="reachable", status="pass", latency_ms=ms))
        out.append(CheckResult(name="TLS", status="pass", detail="certificate verified"))
        fix = exc.hint
        if config.auth_type == "none":
            fix = (
                "The server requires sign-in: choose an Authentication Type and enter credentials."
            )
        out.append(CheckResult(name="signed in", status="fail", detail=exc.message, fix=fix))
        out.append(CheckResult(name="QIDO search", status="n/a", detail="skipped: not signed in"))
        return out
    except DicomWebError as exc:
        ms = (time.perf_counter() - start) * 1000
        out.append(CheckResult(name="reachable", status="pass", latency_ms=ms))
        out.append(CheckResult(name="TLS", status="pass", detail="certificate verified"))
        out.append(CheckResult(name="signed in", status="n/a" if auth is None else "pass"))
        fix = exc.hint or "Check the Server URL, Server Postfix and QIDO Postfix."
        out.append(CheckResult(name="QIDO search", status="fail", detail=exc.message, fix=fix))
        return out
    ms = (time.perf_counter() - start) * 1000
    out.append(CheckResult(name="reachable", status="pass", latency_ms=ms))
    out.append(CheckResult(name="TLS", status="pass", detail="certificate verified"))
    if auth is None and config.auth_type == "none":
        out.append(
            CheckResult(name="signed in", status="n/a", detail="no authentication configured")
        )
    else:
        out.append(
            CheckResult(
                name="signed in", status="pass", detail=f"as {config.username or config.auth_type}"
            )
        )
    found = f"{len(studies)} study found" if studies else "no studies on the server"
    out.append(CheckResult(name="QIDO search", status="pass", detail=found, latency_ms=ms))
    return out


def _first_series(client: DicomWebClient) -> tuple[StudySummary, SeriesSummary] | None:
    for study in client.search_studies(limit=5):
        series = client.search_series(study.study_uid)
        if series:
            return study, series[0]
    return None


def _feature_checks(client: DicomWebClient, config: ServerConfig) -> list[CheckResult]:
    out: list[CheckResult] = []
    # include-field
    if config.qido_supports_include_field:
        try:
            _, ms = _timed(lambda: client.search_studies(limit=1))
            out.append(
                CheckResult(name="include-field", status="pass", detail="accepted", latency_ms=ms)
            )
        except DicomWebError as exc:
            out.append(
                CheckResult(
                    name="include-field",
                    status="fail",
                    detail=exc.message,
                    fix="Turn off 'QIDO Supports Include Field' for this server.",
                )
            )
    else:
        out.append(
            CheckResult(name="include-field", status="n/a", detail="not enabled for this server")
        )

    try:
        target = _first_series(client)
    except DicomWebError as exc:
        out.append(_fail("thumbnails", exc))
        out.append(
            CheckResult(name="WADO retrieval", status="n/a", detail="skipped: series search failed")
        )
        return out
    if target is None:
        for n in ("thumbnails", "WADO retrieval"):
            out.append(
                CheckResult(name=n, status="n/a", detail="no series on the server to test with")
            )
        return out
    study, series = target
    out.append(_thumbnail_check(client, config, study, series))
    out.append(_retrieval_check(client, config, study, series))
    return out


def _thumbnail_check(
    client: DicomWebClient, config: ServerConfig, study: StudySummary, series: SeriesSummary
) -> CheckResult:
    if config.thumbnail_rendering == "wadors":
        return CheckResult(
            name="thumbnails",
            status="n/a",
            detail="made locally from a retrieved frame (thumbnail rendering: wadors)",
        )
    try:
        image, ms = _timed(lambda: client.thumbnail(study.study_uid, series.series_uid))
    except DicomWebError as exc:
        fix = exc.hint
        if isinstance(exc, NotFound | ServerError):
            fix = "Set 'Thumbnail rendering protocol' to wadors (thumbnails made from frames)."
        return CheckResult(name="thumbnails", status="fail", detail=exc.message, fix=fix)
    fallback = "/rendered (the server has no /thumbnail)" if image.source == "rendered" else ""
    return CheckResult(
        name="thumbnails",
        status="pass",
        detail=f"{image.media_type}, {len(image.data)} bytes",
        fallback=fallback,
        latency_ms=ms,
    )


def _retrieval_check(
    client: DicomWebClient, config: ServerConfig, study: StudySummary, series: SeriesSummary
) -> CheckResult:
    name = "WADO retrieval"
    try:
        instances = client.search_instances(study.study_uid, series.series_uid, limit=1)
        if not instances:
            return CheckResult(name=name, status="n/a", detail="the series has no instances")
        sop = instances[0].sop_instance_uid
        if config.image_rendering == "wado":
            _, ms = _timed(lambda: client.wado_uri(study.study_uid, series.series_uid, sop))
            detail = "WADO-URI instance retrieved"
        elif config.image_rendering == "https":
            _, ms = _timed(
                lambda: client.rendered(study.study_uid, series.series_uid, sop, viewport=(64, 64))
            )
            detail = "server-rendered image retrieved"
        else:
            frames, ms = _timed(
                lambda: client.retrieve_frames(study.study_uid, series.series_uid, sop, [1])
            )
            detail = f"frame 1 retrieved ({frames[0].media_type}, {len(frames[0].data)} bytes)"
    except DicomWebError as exc:
        fix = exc.hint
        if isinstance(exc, NotFound):
            fix = (
                "Check the WADO URI Postfix (e.g. /zhiva/wado or wado)."
                if config.image_rendering == "wado"
                else "Check the WADO Postfix, or switch the image rendering protocol."
            )
        return CheckResult(name=name, status="fail", detail=exc.message, fix=fix)
    return CheckResult(name=name, status="pass", detail=detail, latency_ms=ms)
