"""TLS: one verifying SSL context per server, and TLS failures explained by kind.

Verification is always on. The operating system's trust store is used (the platform
verifier through `truststore` on macOS and Windows, the system CA bundle on Linux), so a
certificate an administrator trusted system-wide works as it does in the browser, plus the server's own CA file when one is configured — the answer
to self-signed certificates, never turning verification off.
"""

from __future__ import annotations

import os
import ssl
import sys
from urllib.parse import urlsplit

import truststore

from ._errors import CertificateExpired, HostnameMismatch, TlsError, UntrustedCertificate

__all__ = ["classify_tls_error", "make_ssl_context"]

# OpenSSL X509_V_ERR_* codes (include/openssl/x509_vfy.h).
_EXPIRED = {9, 10}  # CERT_NOT_YET_VALID, CERT_HAS_EXPIRED
_UNTRUSTED = {2, 18, 19, 20, 21, 27, 28}  # unknown issuer, self-signed, untrusted, rejected
_HOSTNAME = {62, 64}  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH


# Where Linux distributions keep their CA bundle, for systems whose OpenSSL default
# paths are empty (the list truststore uses).
_CA_FILE_CANDIDATES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)


def _linux_os_trust(ctx: ssl.SSLContext) -> None:
    """The OS trust store on Linux: OpenSSL's default paths, else the usual bundle files.

    This is what truststore does on Linux, but truststore reloads the bundle for every
    connection (~10 ms of PEM parsing each); loading it once per context is the same
    trust for less work.
    """
    defaults = ssl.get_default_verify_paths()
    has_capath = (
        bool(defaults.capath)
        and os.path.isdir(defaults.capath or "")
        and any(name.endswith(".0") for name in os.listdir(defaults.capath or "."))
    )
    if defaults.cafile or has_capath:
        ctx.set_default_verify_paths()
        return
    for candidate in _CA_FILE_CANDIDATES:
        if os.path.isfile(candidate):
            ctx.load_verify_locations(cafile=candidate)
            return
    # No system store at all (a minimal container, an unusual distribution): the
    # bundle shipped with httpx (certifi) is better than trusting nothing. It is used
    # only here, never in addition to a system store the administrator manages.
    bundle = _bundled_ca_file()
    if bundle:
        ctx.load_verify_locations(cafile=bundle)


def _bundled_ca_file() -> str:
    try:
        import certifi
    except ImportError:
        return ""
    path = certifi.where()
    return path if os.path.isfile(path) else ""


def make_ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """A verifying client context: the OS trust store plus `ca_file` when given."""
    if sys.platform.startswith("linux"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
        _linux_os_trust(ctx)
    else:  # macOS / Windows: the platform verifier, as the user's browser uses
        ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(
                f"Cannot use the CA certificate file '{ca_file}' ({exc}).",
                hint="Choose a PEM file with the server's CA certificate in Settings > Servers.",
            ) from exc
    return ctx


def _find_verify_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        for arg in getattr(current, "args", ()):
            if isinstance(arg, ssl.SSLError):
                return arg
        current = current.__cause__ or current.__context__
    return None


def classify_tls_error(exc: BaseException, url: str, *, server: str) -> TlsError | None:
    """Map a low-level TLS failure to the most specific `TlsError`, or None if not TLS."""
    ssl_error = _find_verify_error(exc)
    text = str(ssl_error if ssl_error is not None else exc)
    if ssl_error is None and "CERTIFICATE_VERIFY_FAILED" not in text and "SSL" not in text:
        return None
    host = urlsplit(url).hostname or url
    code = getattr(ssl_error, "verify_code", None)
    message = getattr(ssl_error, "verify_message", None) or text
    lowered = message.lower()
    if code in _HOSTNAME or "hostname mismatch" in lowered or "ip address mismatch" in lowered:
        return HostnameMismatch(
            f"The server's TLS certificate is not valid for '{host}' ({message}).",
            server=server,
            hint=(
                "The certificate names another host. If you reach the server by IP address "
                "(e.g. 192.168.x.x) while its certificate was issued for 'localhost', ask the "
                "administrator to reissue it with that address in its subjectAltName, or use "
                "the host name the certificate was issued for."
            ),
        )
    if code in _EXPIRED or "expired" in lowered or "not yet valid" in lowered:
        return CertificateExpired(
            f"The server's TLS certificate has expired or is not yet valid ({message}).",
            server=server,
            hint="Ask the administrator to renew it, and check this computer's date and time.",
        )
    if (
        code in _UNTRUSTED
        or "self-signed" in lowered
        or "self signed" in lowered
        or ("unable to get local issuer" in lowered)
    ):
        return UntrustedCertificate(
            f"The server's TLS certificate is not trusted ({message}).",
            server=server,
            hint=(
                "It is self-signed or issued by an unknown authority. Get the CA certificate "
                "from the administrator (for the Zhiva local PACS: nginx's trusted.crt) and "
                "either trust it system-wide or choose it as this server's CA file in "
                "Settings > Servers."
            ),
        )
    return TlsError(
        f"The secure (TLS) connection failed ({message}).",
        server=server,
        hint="Check that the URL points at an https server and that it speaks TLS 1.2 or newer.",
    )
