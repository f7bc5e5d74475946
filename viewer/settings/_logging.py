"""Logging to a rotating file, through the project's one redaction filter.

`redact(text)` is the single place that knows what a secret looks like in text:
Authorization / Authentication / Proxy-Authorization header values and bare
``Basic ...`` / ``Bearer ...`` credentials, JWT-shaped strings, ``token=`` /
``access_token=`` / ``password=`` (any key ending in token, password, secret, api key)
in URLs, JSON and key=value text, passwords in URL user-info, and every secret value
registered at runtime (the secret store registers each one it hands out).
`RedactingFilter` applies it to the whole formatted record — message, arguments,
exception text and stack — before any handler writes it.

`hide_patient_details(text)` does the same for what identifies a patient: URL query
strings (QIDO searches carry PatientName and PatientID), ``PatientName=...``-style
pairs of the patient keywords, and instance UIDs (study, series and instance UIDs point
to one patient; the standard's own ``1.2.840.10008.*`` UIDs are kept). The filter
applies both; httpx and httpcore, which log every URL at INFO, are held at WARNING.

Over-redaction is preferred to a leak: a log line that lost a harmless word is a
small price; a token in a log file is an incident.
"""

from __future__ import annotations

import base64
import logging
import logging.handlers
import os
import re
import threading
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from ._paths import ensure_private_dir  # not ._atomic: hashlib, secrets before the window

__all__ = [
    "LOG_BACKUP_COUNT",
    "LOG_MAX_BYTES",
    "REDACTED",
    "RedactingFilter",
    "forget_secrets",
    "hide_patient_details",
    "redact",
    "register_secret",
    "setup_logging",
    "shutdown_logging",
]

REDACTED = "[REDACTED]"
LOG_MAX_BYTES = 2 * 1024 * 1024
LOG_BACKUP_COUNT = 5
#: Registered secrets shorter than this are not replaced verbatim (a 2-character
#: "secret" would shred every log line); the shape-based patterns still apply.
MIN_REGISTERED_SECRET = 4

_B64URL = r"[A-Za-z0-9_-]"
_SCHEMES = r"basic|bearer|token|digest|negotiate"
#: Header-like "Authorization: Basic abc", "'authorization': 'Bearer x'",
#: "Authentication=Bearer x": the name and the scheme stay, the credentials go (to the
#: end of the quoted value, or of the line when unquoted).
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authori[sz]ation|authentication)(['\"]?\s*[:=]\s*)"
    rf"(?:(['\"])(?:({_SCHEMES})\s+)?[^'\"\n]*\3|(?:({_SCHEMES})\s+)?[^\n]*)"
)
#: A credential after its scheme anywhere else. Basic credentials are base64 of
#: "user:password" (checked, so "Basic authentication" in prose survives); bearer
#: tokens are long (so "Bearer tokens" survives).
_BASIC = re.compile(r"\b(Basic)(\s+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer)(\s+)[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE)
#: JWT / JWS compact form: a base64url JSON header ("eyJ" is '{"') and more parts, or
#: three long base64url parts of any kind (hostname labels are rarely 16+ characters).
_JWT = re.compile(rf"\beyJ{_B64URL}*\.{_B64URL}*(?:\.{_B64URL}*)?")
_LONG_DOTTED = re.compile(rf"(?<![\w.-]){_B64URL}{{16,}}\.{_B64URL}{{16,}}\.{_B64URL}{{16,}}")
#: key=value, "key": "value" and key: value in URLs, JSON and prose, for any key that
#: ends in token, password, secret or api key (access_token, refreshToken, X-Auth-Token,
#: client_secret, ...). Keys such as token_server do not end so and are kept.
_KEY_VALUE = re.compile(
    r"(?i)([\w-]*(?:token|passw(?:or)?d|pwd|secret|api[_-]?key))(['\"]?\s*[:=]\s*)"
    r"(?!\[REDACTED\])(?:(['\"])[^'\"\n]*\3|[^\s&'\",;}\])]+)"
)
#: https://user:password@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")

#: The query string of any URL: QIDO puts the patient's name and ID there.
_URL_QUERY = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s#'\"<>]*")
#: Keyword=value and "keyword": "value" pairs of the attributes that name a patient.
_PATIENT_KEY_VALUE = re.compile(
    r"(?i)\b(Patient(?:Name|ID|BirthDate|BirthName|Address|TelephoneNumbers)|OtherPatientIDs|"
    r"AccessionNumber|IssuerOfPatientID|00100010|00100020|00100030|00080050)"
    r"(['\"]?\s*[:=]\s*)(?:(['\"])[^'\"\n]*\3|[^\s&'\",;}\])]+)"
)
#: A DICOM UID: root 0, 1 or 2, then five or more components, or three or more adding
#: up to 12+ characters (2.25.<uuid>) — so IP addresses and version numbers are left
#: alone — other than the standard's own 1.2.840.10008.* UIDs.
_UID = re.compile(
    r"(?<![\w.])(?!1\.2\.840\.10008\.)"
    r"(?:[0-2](?:\.\d+){4,}|(?=[\d.]{12})[0-2](?:\.\d+){2,})(?![\w.])"
)
PATIENT_DETAIL = "[PATIENT]"

_known: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Make `value` (and its URL-encoded forms) redacted wherever it appears in logs."""
    global _known_pattern
    if not value or len(value) < MIN_REGISTERED_SECRET:
        return
    forms = {value, quote(value, safe=""), quote_plus(value)}
    with _known_lock:
        if forms <= _known:
            return
        _known.update(forms)
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def forget_secrets() -> None:
    """Drop every registered secret (tests; a sign-out keeps them: old lines may follow)."""
    global _known_pattern
    with _known_lock:
        _known.clear()
        _known_pattern = None


def _header_sub(match: re.Match[str]) -> str:
    name, sep, quote_char = match.group(1), match.group(2), match.group(3)
    scheme = match.group(4) or match.group(5)
    value = f"{scheme} {REDACTED}" if scheme else REDACTED
    return f"{name}{sep}{quote_char or ''}{value}{quote_char or ''}"


def _keyvalue_sub(match: re.Match[str]) -> str:
    quote_char = match.group(3) or ""
    return f"{match.group(1)}{match.group(2)}{quote_char}{REDACTED}{quote_char}"


def _basic_sub(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match.group(3) + "==").decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return match.group(0)
    if ":" not in decoded or not decoded.isprintable():
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


def redact(text: str) -> str:
    """`text` with every credential we can recognise replaced by ``[REDACTED]``."""
    pattern = _known_pattern  # read once: another thread may replace it
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _HEADER.sub(_header_sub, text)
    text = _KEY_VALUE.sub(_keyvalue_sub, text)
    text = _BASIC.sub(_basic_sub, text)
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _LONG_DOTTED.sub(REDACTED, text)
    return _USERINFO.sub(rf"\1{REDACTED}@", text)


def hide_patient_details(text: str) -> str:
    """`text` without URL query strings, patient keyword values and instance UIDs."""
    text = _URL_QUERY.sub(r"\1?[query]", text)
    text = _PATIENT_KEY_VALUE.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{PATIENT_DETAIL}{m.group(3) or ''}",
        text,
    )
    return _UID.sub("[UID]", text)


def _safe(text: str) -> str:
    return hide_patient_details(redact(text))


class RedactingFilter(logging.Filter):
    """Redacts a record in place, so every handler after it sees only the safe text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record (or leak args)
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = _safe(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = _safe(record.exc_text)
        if record.stack_info:
            record.stack_info = _safe(record.stack_info)
        return True


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Creates each log file (the first and every rotated-in one) with mode 0600."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
_HANDLER_TAG = "_zhiva_viewer_handler"
#: Libraries that log every request's full URL (query included) at INFO or DEBUG: only
#: their warnings are of use to us, and the URLs are what must stay out.
_QUIET_LOGGERS = ("httpx", "httpcore", "hpack")


def setup_logging(
    log_dir: Path,
    *,
    level: int | str = logging.INFO,
    console_level: int | str | None = None,
    max_bytes: int = LOG_MAX_BYTES,
    backup_count: int = LOG_BACKUP_COUNT,
) -> Path:
    """Log the whole process to ``log_dir/zhiva-viewer.log`` (rotating), redacted.

    Calling it again replaces the handlers it installed (a second run in one process,
    tests). With `console_level`, records at that level or above also go to stderr,
    through the same filter. Returns the log file's path.
    """
    shutdown_logging()
    # Logs can hold patient names and server addresses: keep them private.
    ensure_private_dir(log_dir)
    log_file = log_dir / "zhiva-viewer.log"
    redacting = RedactingFilter()
    formatter = logging.Formatter(_FORMAT)
    file_handler = _PrivateRotatingFileHandler(
        log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
    )
    handlers: list[logging.Handler] = [file_handler]
    if console_level is not None:
        console = logging.StreamHandler()
        console.setLevel(console_level)
        handlers.append(console)
    root = logging.getLogger()
    for handler in handlers:
        handler.addFilter(redacting)
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return log_file


def shutdown_logging() -> None:
    """Remove and close the handlers `setup_logging` installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_TAG, False):
            root.removeHandler(handler)
            handler.close()
