"""DICOMweb over httpx: server configs, QIDO/WADO-RS/WADO-URI/STOW, TLS, errors.

Never imports dearpygui, `render` or `viewer` (an import-linter contract checks it).
The public surface is `__all__`; a test pins it so it changes only on purpose.
Names are imported on first use (PEP 562), so `from net import ServerConfig` does not
pay for pydicom and httpx: the app's first frame must not wait for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._auth import (
        TokenClaims,
        TokenSet,
        ZhivaTokenAuth,
        configuration_link_origin,
        decode_token,
        exchange_auth_token,
        parse_configuration_link,
        refresh_access_token,
        server_from_claims,
    )
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
        validate_url,
        wado_rs_root,
        wado_uri_root,
    )
    from ._discover import Discovery, Finding, discover
    from ._errors import (
        AnswerTooLarge,
        AuthError,
        CertificateExpired,
        DicomWebError,
        HostnameMismatch,
        InsecureUrl,
        NotFound,
        ProtocolError,
        ServerError,
        SignInRequired,
        TlsError,
        TokenError,
        TokenExpired,
        TooManyResults,
        TransportError,
        UntrustedCertificate,
    )
    from ._fields import SECRET_FIELDS, SERVER_FIELDS, ServerField, validate_config
    from ._limits import DEFAULT_DEADLINES, DEFAULT_SIZE_LIMITS, Deadlines, SizeLimits
    from ._login import (
        DEFAULT_LOGIN_TIMEOUT,
        LoginCancelled,
        LoopbackLogin,
        auth_base_url,
        sign_user,
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
        dicom_text,
        format_person_name,
        sniff_media_type,
    )
    from ._quirks import QIDO_RECORD_CEILING
    from ._retry import DEFAULT_RETRY, RetryPolicy
    from ._source import StudySource

_WHERE: dict[str, str] = {
    "AnswerTooLarge": "._errors",
    "AuthError": "._errors",
    "AuthType": "._config",
    "CertificateExpired": "._errors",
    "CheckResult": "._check",
    "CheckStatus": "._check",
    "DEFAULT_CONNECT_TIMEOUT": "._config",
    "DEFAULT_DEADLINES": "._limits",
    "DEFAULT_LOGIN_TIMEOUT": "._login",
    "DEFAULT_READ_TIMEOUT": "._config",
    "DEFAULT_RETRY": "._retry",
    "DEFAULT_SIZE_LIMITS": "._limits",
    "Deadlines": "._limits",
    "DicomWebClient": "._client",
    "DicomWebError": "._errors",
    "Discovery": "._discover",
    "Finding": "._discover",
    "Frame": "._models",
    "HostnameMismatch": "._errors",
    "InsecureUrl": "._errors",
    "InstanceSummary": "._models",
    "LoginCancelled": "._login",
    "LoopbackLogin": "._login",
    "NotFound": "._errors",
    "ProtocolError": "._errors",
    "RenderedImage": "._models",
    "RenderingProtocol": "._config",
    "QIDO_RECORD_CEILING": "._quirks",
    "RetryPolicy": "._retry",
    "SECRET_FIELDS": "._fields",
    "SERVER_FIELDS": "._fields",
    "SeriesSummary": "._models",
    "ServerCheck": "._check",
    "ServerConfig": "._config",
    "ServerError": "._errors",
    "ServerField": "._fields",
    "SignInRequired": "._errors",
    "SizeLimits": "._limits",
    "StoreFailure": "._models",
    "StoreResult": "._models",
    "StudyQuery": "._models",
    "StudySource": "._source",
    "StudySummary": "._models",
    "TlsError": "._errors",
    "TokenClaims": "._auth",
    "TokenError": "._errors",
    "TokenExpired": "._errors",
    "TooManyResults": "._errors",
    "TokenSet": "._auth",
    "TransportError": "._errors",
    "UntrustedCertificate": "._errors",
    "ZhivaTokenAuth": "._auth",
    "auth_base_url": "._login",
    "check_server": "._check",
    "configuration_link_origin": "._auth",
    "decode_token": "._auth",
    "discover": "._discover",
    "dicom_text": "._models",
    "exchange_auth_token": "._auth",
    "format_person_name": "._models",
    "join_url": "._config",
    "new_server_id": "._config",
    "origin_of": "._config",
    "parse_configuration_link": "._auth",
    "qido_root": "._config",
    "refresh_access_token": "._auth",
    "server_from_claims": "._auth",
    "sign_user": "._login",
    "sniff_media_type": "._models",
    "validate_config": "._fields",
    "validate_url": "._config",
    "wado_rs_root": "._config",
    "wado_uri_root": "._config",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'net' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DEADLINES",
    "DEFAULT_LOGIN_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRY",
    "DEFAULT_SIZE_LIMITS",
    "QIDO_RECORD_CEILING",
    "SECRET_FIELDS",
    "SERVER_FIELDS",
    "AnswerTooLarge",
    "AuthError",
    "AuthType",
    "CertificateExpired",
    "CheckResult",
    "CheckStatus",
    "Deadlines",
    "DicomWebClient",
    "DicomWebError",
    "Discovery",
    "Finding",
    "Frame",
    "HostnameMismatch",
    "InsecureUrl",
    "InstanceSummary",
    "LoginCancelled",
    "LoopbackLogin",
    "NotFound",
    "ProtocolError",
    "RenderedImage",
    "RenderingProtocol",
    "RetryPolicy",
    "SeriesSummary",
    "ServerCheck",
    "ServerConfig",
    "ServerError",
    "ServerField",
    "SignInRequired",
    "SizeLimits",
    "StoreFailure",
    "StoreResult",
    "StudyQuery",
    "StudySource",
    "StudySummary",
    "TlsError",
    "TokenClaims",
    "TokenError",
    "TokenExpired",
    "TokenSet",
    "TooManyResults",
    "TransportError",
    "UntrustedCertificate",
    "ZhivaTokenAuth",
    "auth_base_url",
    "check_server",
    "configuration_link_origin",
    "decode_token",
    "dicom_text",
    "discover",
    "exchange_auth_token",
    "format_person_name",
    "join_url",
    "new_server_id",
    "origin_of",
    "parse_configuration_link",
    "qido_root",
    "refresh_access_token",
    "server_from_claims",
    "sign_user",
    "sniff_media_type",
    "validate_config",
    "validate_url",
    "wado_rs_root",
    "wado_uri_root",
]
