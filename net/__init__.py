"""DICOMweb over httpx: server configs, QIDO/WADO-RS/WADO-URI/STOW, TLS, errors.

Never imports dearpygui, `render` or `viewer` (an import-linter contract checks it).
The public surface is `__all__`; a test pins it so it changes only on purpose.
"""

from ._check import CheckResult, CheckStatus, ServerCheck, check_server
from ._client import DicomWebClient
from ._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    AuthType,
    RenderingProtocol,
    ServerConfig,
    join_url,
    new_server_id,
    origin_of,
    qido_root,
    validate_config,
    validate_url,
    wado_rs_root,
    wado_uri_root,
)
from ._errors import (
    AuthError,
    CertificateExpired,
    DicomWebError,
    HostnameMismatch,
    InsecureUrl,
    NotFound,
    ProtocolError,
    ServerError,
    TlsError,
    TransportError,
    UntrustedCertificate,
)
from ._models import (
    Frame,
    InstanceSummary,
    RenderedImage,
    SeriesSummary,
    StoreFailure,
    StoreResult,
    StudyQuery,
    StudySummary,
    format_person_name,
    sniff_media_type,
)
from ._retry import DEFAULT_RETRY, RetryPolicy
from ._source import StudySource

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRY",
    "AuthError",
    "AuthType",
    "CertificateExpired",
    "CheckResult",
    "CheckStatus",
    "DicomWebClient",
    "DicomWebError",
    "Frame",
    "HostnameMismatch",
    "InsecureUrl",
    "InstanceSummary",
    "NotFound",
    "ProtocolError",
    "RenderedImage",
    "RenderingProtocol",
    "RetryPolicy",
    "SeriesSummary",
    "ServerCheck",
    "ServerConfig",
    "ServerError",
    "StoreFailure",
    "StoreResult",
    "StudyQuery",
    "StudySource",
    "StudySummary",
    "TlsError",
    "TransportError",
    "UntrustedCertificate",
    "check_server",
    "format_person_name",
    "join_url",
    "new_server_id",
    "origin_of",
    "qido_root",
    "sniff_media_type",
    "validate_config",
    "validate_url",
    "wado_rs_root",
    "wado_uri_root",
]
