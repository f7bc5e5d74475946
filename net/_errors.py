"""The exception tree of the network layer.

Every failure the UI can see is one of these; `httpx` exceptions are mapped at the
boundary (`net._client`) and never leak. Messages say which server, what happened and
what to do, and never contain credentials::

    DicomWebError                  any failure talking to a DICOMweb server
    ├── TransportError             no usable HTTP exchange (DNS, refused, timeout, dropped)
    │   └── TlsError               the TLS handshake failed
    │       ├── UntrustedCertificate   self-signed / unknown CA
    │       ├── HostnameMismatch       certificate not issued for this host name / IP
    │       └── CertificateExpired     certificate outside its validity period
    ├── InsecureUrl                plain http (or a redirect to it) refused
    ├── AuthError                  401/403, or sign-in impossible
    │   ├── TokenError             a sign-in token is malformed, expired or refused
    │   │   └── TokenExpired       ...expired (checked before anything is sent)
    │   └── SignInRequired         the session cannot be renewed: the user must sign in
    ├── NotFound                   404
    ├── ServerError                other 4xx/5xx answers
    │   └── TooManyResults         a search lists no more results (AWS: 10,000 records)
    └── ProtocolError              the answer is not what DICOMweb promises (bad multipart,
        │                          bad JSON, not DICOM)
        └── AnswerTooLarge         the answer exceeds a size limit (`SizeLimits`); asking
                                   again gets the same answer, so callers do not retry it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AnswerTooLarge",
    "AuthError",
    "CertificateExpired",
    "DicomWebError",
    "HostnameMismatch",
    "InsecureUrl",
    "NotFound",
    "ProtocolError",
    "ServerError",
    "SignInRequired",
    "TlsError",
    "TokenError",
    "TokenExpired",
    "TooManyResults",
    "TransportError",
    "UntrustedCertificate",
]


class DicomWebError(Exception):
    """Base of every network-layer error.

    `server` names the server (its configured name or origin) for the message;
    `request`/`response` are kept for diagnostics (never printed with headers).
    """

    def __init__(
        self,
        message: str,
        *,
        server: str = "",
        hint: str = "",
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        self.message = message
        self.server = server
        self.hint = hint
        self.request = request
        self.response = response
        super().__init__(self.__str__())

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    def __str__(self) -> str:
        text = f"{self.server}: {self.message}" if self.server else self.message
        if self.hint:
            text += f" {self.hint}"
        return text


class TransportError(DicomWebError):
    """The server could not be reached or the connection broke."""


class TlsError(TransportError):
    """The TLS handshake failed; the subclass says why."""


class UntrustedCertificate(TlsError):
    """The server's certificate does not chain to a trusted CA (often self-signed)."""


class HostnameMismatch(TlsError):
    """The certificate is valid but was issued for another host name or IP address."""


class CertificateExpired(TlsError):
    """The certificate is outside its validity period."""


class InsecureUrl(DicomWebError):
    """A plain-http URL or redirect was refused."""


class AuthError(DicomWebError):
    """The server refused the credentials (401/403) or sign-in is needed."""


class TokenError(AuthError):
    """A sign-in token (JWT) is malformed, expired, already used or refused."""


class TokenExpired(TokenError):
    """The token's `exp` has passed (the reference server would answer 500 for it)."""


class SignInRequired(AuthError):
    """Refreshing the session failed or is impossible: the user has to sign in again."""


class NotFound(DicomWebError):
    """The server answered 404 for the resource."""


class ServerError(DicomWebError):
    """The server answered with an error status other than 401/403/404."""


class TooManyResults(ServerError):
    """The server refused the next page of a search: it lists only the first `shown`.

    AWS HealthImaging's QIDO-RS returns at most 10,000 records; others cap offsets too.
    The user is told to narrow the search rather than shown an error.
    """

    def __init__(self, message: str, *, shown: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.shown = shown


class ProtocolError(DicomWebError):
    """The server's answer broke the DICOMweb/HTTP contract (multipart, JSON, DICOM)."""


class AnswerTooLarge(ProtocolError):
    """An answer (or one part of it) is larger than a size limit: reading stopped there.

    `limit` names the limit: a `SizeLimits` field (``json_bytes``, ``image_bytes``,
    ``part_bytes``...) or, for a cap of its own, what it bounds; `max_bytes` is its value.
    Unlike a broken connection this is not transient: the same request brings the same
    answer, until the limit is raised.
    """

    def __init__(self, message: str, *, limit: str, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit
        self.max_bytes = max_bytes
