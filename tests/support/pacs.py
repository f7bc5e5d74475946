"""The test PACS: Orthanc with the DICOMweb plugin behind nginx TLS, on loopback.

`run_test_pacs` starts, in a work directory of its own and on free loopback ports, the
layout of the Zhiva local PACS (DESIGN.md §4): nginx serves
``https://localhost:<port>/zhiva/pacs/`` from Orthanc's DICOMweb root and
``/zhiva/wado`` from its WADO-URI, with a certificate for ``localhost`` only, issued by a
test CA the fixture makes with openssl. A second nginx server on another port presents
an expired certificate from the same CA, and an unrelated "wrong" CA is written for
negative tests. Orthanc keeps Basic auth on (users ``zhiva-admin``, ``zhiva-editor``,
``zhiva``, with generated passwords); nginx refuses the methods a user may not use,
as the Zhiva Basic-auth variant does (editor: GET and POST; ``zhiva``: GET only).

On a third port the same nginx serves the Zhiva token layout: ``/zhiva/pacs/`` and
``/zhiva/wado`` behind ``auth_request`` to a test token server (tests/support/
token_server.py, its own process, RS256 keys made per run), which also answers under
``/auth/``; only a valid access token reaches Orthanc (nginx adds the Basic credentials
of ``zhiva-admin`` upstream), and without ``canEditResource`` only GET and HEAD do.

Each server runs in its own session, is asked to exit with SIGTERM, then killed; it is
stopped when the context exits (test failures and KeyboardInterrupt included), from an
atexit hook as a backstop, and by the kernel if the Python process dies (PDEATHSIG).
A missing system package is an error naming the Debian package, never a skip.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import httpx

from .testdata import TestData

__all__ = [
    "DCM4CHEE_AET",
    "ORTHANC_DICOMWEB_PLUGIN",
    "USERS",
    "Certificates",
    "PacsProcess",
    "PacsSetupError",
    "RunningPacs",
    "TestPacs",
    "find_system_tools",
    "make_certificates",
    "run_test_pacs",
    "start_test_pacs",
]

#: Orthanc's DICOMweb plugin as the Debian package `orthanc-dicomweb` installs it.
ORTHANC_DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
#: The Basic-auth users of the Zhiva local PACS (DESIGN.md §4).
USERS = ("zhiva-admin", "zhiva-editor", "zhiva")
#: The token server's users: name -> (display name, canEditResource).
TOKEN_USERS: Mapping[str, tuple[str, bool]] = MappingProxyType(
    {
        "zhiva-admin": ("Zhiva Admin", True),
        "zhiva-editor": ("Zhiva Editor", True),
        "zhiva": ("Zhiva Reader", False),
    }
)
_REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0
_POLL_INTERVAL = 0.05
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class PacsSetupError(RuntimeError):
    """The test PACS could not be set up: a missing package, a server that did not start."""

    def __init__(self, message: str, process: PacsProcess | None = None) -> None:
        super().__init__(message)
        #: The server that failed to start, if one did (already stopped).
        self.process = process


# --- system tools ---------------------------------------------------------------------


@dataclass(frozen=True)
class SystemTools:
    orthanc: str
    nginx: str
    openssl: str
    dicomweb_plugin: Path


def find_system_tools() -> SystemTools:
    """Locate Orthanc, its DICOMweb plugin, nginx and openssl, or fail naming the packages."""
    search = os.pathsep.join([os.environ.get("PATH", ""), _SYSTEM_PATH])
    found: dict[str, str] = {}
    missing: list[str] = []
    for binary, package in (
        ("Orthanc", "orthanc"),
        ("nginx", "nginx-light"),
        ("openssl", "openssl"),
    ):
        path = shutil.which(binary, path=search)
        if path is None:
            missing.append(f"{binary} (Debian package `{package}`)")
        else:
            found[binary] = path
    if not ORTHANC_DICOMWEB_PLUGIN.is_file():
        missing.append(f"{ORTHANC_DICOMWEB_PLUGIN} (Debian package `orthanc-dicomweb`)")
    if missing:
        raise PacsSetupError(
            "the test PACS needs system packages that are not installed: "
            + "; ".join(missing)
            + ". Install them with `apt-get install orthanc orthanc-dicomweb nginx-light openssl`"
            " (or set ZHIVA_SKIP_INTEGRATION=1 to skip the integration tests)."
        )
    return SystemTools(found["Orthanc"], found["nginx"], found["openssl"], ORTHANC_DICOMWEB_PLUGIN)


# --- certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """PEM files of the test PKI (all in one directory of the run)."""

    ca_file: Path  # the test CA (CA:true) that signed both leaves
    leaf_cert: Path  # CN=localhost, subjectAltName DNS:localhost only
    leaf_key: Path
    expired_cert: Path  # the same names, valid only in January 2020
    expired_key: Path
    wrong_ca_file: Path  # an unrelated CA: trusting it must not make the server trusted


_CA_CONFIG = """\
# A minimal CA for `openssl ca`, which (unlike `openssl x509 -req`) can backdate
# certificates: the expired leaf is issued with -startdate/-enddate in the past.
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
x509_extensions = leaf_ext

[ policy_any ]
commonName = supplied

[ leaf_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PacsSetupError(f"`{' '.join(cmd)}` failed:\n{result.stderr.strip()}")


def _self_signed_ca(openssl: str, directory: Path, name: str, subject: str) -> Path:
    # EC P-256 keys: generated in milliseconds, unlike RSA.
    _run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "3650",
            "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
        ],
        directory,
    )  # fmt: skip
    return directory / f"{name}.pem"


def _issue_leaf(openssl: str, directory: Path, name: str, dates: list[str]) -> None:
    _run(
        [
            openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost",
        ],
        directory,
    )  # fmt: skip
    _run(
        [openssl, "ca", "-config", "ca.cnf", "-batch", "-notext", "-in", f"{name}.csr",
         "-out", f"{name}.pem", *dates],
        directory,
    )  # fmt: skip


def make_certificates(directory: Path, openssl: str = "openssl") -> Certificates:
    """Create the test CA, a localhost leaf, an expired localhost leaf and a wrong CA."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "issued").mkdir(exist_ok=True)
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("1000\n")
    (directory / "ca.cnf").write_text(_CA_CONFIG.format(dir=directory))
    ca_file = _self_signed_ca(openssl, directory, "ca", "/O=Zhiva Viewer tests/CN=Zhiva Test CA")
    _issue_leaf(openssl, directory, "localhost", ["-days", "30"])
    _issue_leaf(
        openssl, directory, "expired",
        ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"],
    )  # fmt: skip
    wrong = _self_signed_ca(openssl, directory, "wrong-ca", "/O=Somebody else/CN=Wrong CA")
    return Certificates(
        ca_file=ca_file,
        leaf_cert=directory / "localhost.pem",
        leaf_key=directory / "localhost.key",
        expired_cert=directory / "expired.pem",
        expired_key=directory / "expired.key",
        wrong_ca_file=wrong,
    )


# --- processes ------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
try:
    # Loaded once here: the child must not dlopen between fork and exec.
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def _die_with_parent() -> None:
    """In the child before exec: have the kernel SIGKILL it if the test process dies.

    A server in its own session is not killed with pytest's process group, so without
    this a crashed or SIGKILLed test run would leave Orthanc and nginx behind. (The
    signal fires when the *thread* that forked exits: start servers from a thread that
    lives as long as they do, as pytest's main thread does.)
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _process_group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name is in parentheses and may contain spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


@dataclass
class PacsProcess:
    """One server process, leader of its own session and process group."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        """Every live process of this server (its process group)."""
        return _process_group_members(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM the group, wait, then SIGKILL what is left; reap the leader."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
            if not self.pids():
                return
        self.popen.wait(timeout=timeout)


def _spawn(
    name: str, cmd: list[str], log: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> PacsProcess:
    with log.open("ab") as out:
        popen = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches all of it
            preexec_fn=_die_with_parent,  # only a prctl call: safe between fork and exec
        )
    return PacsProcess(name, popen, log)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(ready: Callable[[], bool], process: PacsProcess, what: str, timeout: float) -> None:
    """Poll ``ready`` until it is true; fail early if the process exits, or at the deadline.

    The error carries the process and its log's tail; the caller stops the process.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        if not process.alive():
            raise PacsSetupError(
                f"{process.name} exited with code {process.popen.returncode} before {what};"
                f" last lines of {process.log}:\n{process.log_tail()}",
                process,
            )
        try:
            if ready():
                return
        except (OSError, httpx.HTTPError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise PacsSetupError(
                f"{what} did not happen within {timeout:.0f} s ({last_error or 'not ready'});"
                f" last lines of {process.log}:\n{process.log_tail()}",
                process,
            )
        # Polling, not synchronisation: the loop ends as soon as the server answers.
        time.sleep(_POLL_INTERVAL)


# --- configuration --------------------------------------------------------------------


def _orthanc_config(
    workdir: Path, port: int, users: Mapping[str, str], plugin: Path
) -> dict[str, object]:
    return {
        "Name": "ZhivaTestPACS",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "Plugins": [str(plugin)],
        "HttpPort": port,
        # Only nginx and the suite talk to it, over loopback; no DICOM network at all.
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": dict(users),
        # No gzip: the benchmark measures DICOM transfer, not Orthanc's zlib, and the
        # Zhiva nginx in front does not compress multipart/related either.
        "HttpCompressionEnabled": False,
        "WebDavEnabled": False,
        "SaveJobs": False,
        "KeepAlive": True,
        "TcpNoDelay": True,
        # Enough for the client's worker pool plus nginx's pooled connections.
        "HttpThreadsCount": 32,
        # Store what was sent: the JPEG 2000 series must stay JPEG 2000.
        "StorageCompression": False,
        "OverwriteInstances": False,
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "WadoRoot": "/wado",
            "Ssl": False,
            # Like dcm4chee and most PACS: users type names in any case.
            "QidoCaseSensitive": False,
            # Full metadata from the stored files, as a real PACS answers.
            "StudiesMetadata": "Full",
            "SeriesMetadata": "Full",
        },
    }


_NGINX_LOCATIONS = """\
        # The Zhiva local-PACS layout (DESIGN.md §4).
        location /zhiva/pacs/ {{
            if ($zhiva_method_denied) {{ return 403; }}
            proxy_pass http://orthanc/dicom-web/;
        }}
        location /zhiva/wado {{
            if ($zhiva_method_denied) {{ return 403; }}
            proxy_pass http://orthanc/wado;
        }}
        # A dcm4chee-style layout over the same Orthanc (discovery's tests): the AE list
        # as dcm4chee-arc-light's QueryAETs answers it, one AE that serves nothing and
        # DCM4CHEE_ARC_AET, which is not dcm4chee's default title.
        location = /dcm4chee-arc/aets {{
            default_type application/json;
            return 200 '[{{"dicomAETitle":"AS_RECEIVED"}},{{"dicomAETitle":"{dcm4chee_aet}","dicomDescription":"Zhiva test archive"}}]';
        }}
        location /dcm4chee-arc/aets/{dcm4chee_aet}/rs/ {{
            if ($zhiva_method_denied) {{ return 403; }}
            proxy_pass http://orthanc/dicom-web/;
        }}
        location /dcm4chee-arc/aets/{dcm4chee_aet}/wado {{
            if ($zhiva_method_denied) {{ return 403; }}
            proxy_pass http://orthanc/wado;
        }}
        location / {{
            return 404;
        }}
"""
#: The AE title of the test PACS's dcm4chee-style layout.
DCM4CHEE_AET = "ZHIVA_ARC"

# Orthanc sees nginx as zhiva-admin: proxy_set_header in a location replaces every
# header set at the http level, so they are all repeated here.
_NGINX_ORTHANC_HEADERS = """\
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header Forwarded "proto=https;host=$http_host";
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Authorization "Basic {orthanc_basic}";"""

_NGINX_GATED_SERVER = """\
    # The Zhiva token layout (DESIGN.md §4): the test token server decides every request.
    server {{
        listen 127.0.0.1:{gated_port} ssl;
        server_name localhost;
        ssl_certificate {leaf_cert};
        ssl_certificate_key {leaf_key};

        # auth_request's subrequest: the client's headers (Authorization, Origin) go
        # along; the method is passed as a header (subrequests are GETs), the body not.
        location = /_verify {{
            internal;
            proxy_pass http://token_server/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
        location /auth/ {{
            proxy_pass http://token_server/auth/;
        }}
        location /zhiva/pacs/ {{
            auth_request /_verify;
{orthanc_headers}
            proxy_pass http://orthanc/dicom-web/;
        }}
        location /zhiva/wado {{
            auth_request /_verify;
{orthanc_headers}
            proxy_pass http://orthanc/wado;
        }}
        location / {{
            return 404;
        }}
    }}"""

_NGINX_CONFIG = """\
# Written by tests/support/pacs.py for one test session.
daemon off;
# One process: the fixture's PID is the whole server (nginx workers would outlive a
# SIGKILLed master), and a second worker would only compete for the 2 cores.
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;

events {{
    worker_connections 512;
}}

http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/client_body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    default_type application/octet-stream;
    server_tokens off;
    tcp_nodelay on;

    upstream orthanc {{
        server 127.0.0.1:{orthanc_port};
        keepalive 16;
        # Orthanc drops idle keep-alive connections after ~1 s: reuse them for less,
        # or nginx sends a request down a socket Orthanc is closing (502s).
        keepalive_timeout 500ms;
    }}

    upstream token_server {{
        server 127.0.0.1:{token_port};
        keepalive 8;
    }}

    # $remote_user is read from the Basic Authorization header; Orthanc checks the
    # password. The editor may GET and POST, the viewer only GET (DESIGN.md §4).
    map "$remote_user:$request_method" $zhiva_method_denied {{
        default 0;
        "zhiva:POST" 1;
        "zhiva:PUT" 1;
        "zhiva:PATCH" 1;
        "zhiva:DELETE" 1;
        "zhiva-editor:PUT" 1;
        "zhiva-editor:PATCH" 1;
        "zhiva-editor:DELETE" 1;
    }}

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header Forwarded "proto=https;host=$http_host";
    proxy_set_header X-Forwarded-Proto https;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    # Stream both ways: time to first byte matters, and STOW bodies are large.
    proxy_buffering off;
    # With nginx's default 4 KiB buffer every TLS record is 4 KiB: a 158 MB series then
    # arrives in ~39,000 records and the Python client spends most of its time per record
    # (httpx streaming took 0.80 s instead of 0.52 s here). 64 KiB buffers give full
    # 16 KiB records; a production proxy in front of Orthanc should do the same.
    proxy_buffer_size 64k;
    proxy_buffers 8 64k;
    proxy_busy_buffers_size 128k;
    proxy_request_buffering off;
    client_max_body_size 0;
    proxy_read_timeout 300s;
    proxy_send_timeout 300s;

    ssl_protocols TLSv1.2 TLSv1.3;

    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {leaf_cert};
        ssl_certificate_key {leaf_key};
{locations}
    }}

    # The same PACS as nginx ships it: default proxy buffers (one 4 KiB page) with
    # proxy_buffering off, the usual streaming setup. Every TLS record is then 4 KiB:
    # the client's cost per record shows here (DESIGN.md §7, bench/retrieve.py).
    server {{
        listen 127.0.0.1:{default_buffers_port} ssl;
        server_name localhost;
        ssl_certificate {leaf_cert};
        ssl_certificate_key {leaf_key};
        proxy_buffer_size 4k;
        proxy_buffers 8 4k;
        proxy_busy_buffers_size 8k;
{locations}
    }}

    server {{
        listen 127.0.0.1:{expired_port} ssl;
        server_name localhost;
        ssl_certificate {expired_cert};
        ssl_certificate_key {expired_key};
{locations}
    }}

{gated_server}
}}
"""


# --- the running PACS -----------------------------------------------------------------

_RUNNING: set[RunningPacs] = set()
_RUNNING_LOCK = threading.Lock()


@dataclass(eq=False)
class RunningPacs:
    """A started test PACS: its URLs, credentials and processes. `stop` ends it."""

    workdir: Path
    port: int
    expired_port: int
    orthanc_port: int
    users: Mapping[str, str]
    certificates: Certificates
    orthanc: PacsProcess | None = None
    nginx: PacsProcess | None = None
    _stopped: bool = field(default=False, repr=False)
    # The token-gated layout and its token server (additive; 0/None until started).
    gated_port: int = 0
    #: The same layout behind nginx's default 4 KiB proxy buffers (4 KiB TLS records).
    default_buffers_port: int = 0
    token_port: int = 0
    token_users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    token_server: PacsProcess | None = None

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/zhiva/pacs"

    @property
    def wado_uri_url(self) -> str:
        return f"{self.origin}/zhiva/wado"

    @property
    def expired_base_url(self) -> str:
        return f"https://localhost:{self.expired_port}/zhiva/pacs"

    @property
    def default_buffers_base_url(self) -> str:
        return f"https://localhost:{self.default_buffers_port}/zhiva/pacs"

    @property
    def orthanc_url(self) -> str:
        return f"http://127.0.0.1:{self.orthanc_port}"

    @property
    def admin_auth(self) -> tuple[str, str]:
        return ("zhiva-admin", self.users["zhiva-admin"])

    @property
    def token_origin(self) -> str:
        return f"https://localhost:{self.gated_port}"

    @property
    def token_base_url(self) -> str:
        return f"{self.token_origin}/zhiva/pacs"

    @property
    def token_wado_uri_url(self) -> str:
        return f"{self.token_origin}/zhiva/wado"

    @property
    def auth_url(self) -> str:
        return f"{self.token_origin}/auth"

    @property
    def token_server_url(self) -> str:
        return f"http://127.0.0.1:{self.token_port}"

    @property
    def token_server_admin_url(self) -> str:
        return f"{self.token_server_url}/admin"

    @property
    def token_keys_dir(self) -> Path:
        return self.workdir / "token-server" / "keys"

    def processes(self) -> list[PacsProcess]:
        return [p for p in (self.nginx, self.orthanc, self.token_server) if p is not None]

    def pids(self) -> list[int]:
        """Every live process of the PACS (servers and any children)."""
        return [pid for p in self.processes() for pid in p.pids()]

    def stop(self) -> None:
        """Stop nginx, then Orthanc, then the token server; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            for process in self.processes():
                process.stop()
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(self)


@atexit.register
def _stop_all_at_exit() -> None:
    # Backstop for a run that never reached its fixture teardown.
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for pacs in running:
        with contextlib.suppress(Exception):
            pacs.stop()


def _port_in_use(process: PacsProcess) -> bool:
    tail = process.log_tail(60).lower()
    # Orthanc: "...privileged or already in use"; nginx: "bind() ... (98: Address already in use)".
    return "already in use" in tail


def _start_with_port_retries(
    start: Callable[[], PacsProcess], reroll: Callable[[], None]
) -> PacsProcess:
    """Start a server; if another process took its port meanwhile, pick new ports, retry.

    `free_port` hands out a port that was free a moment ago; between closing our probe
    socket and the server's bind another process may take it.
    """
    for attempt in range(3):
        try:
            return start()
        except PacsSetupError as exc:
            if attempt == 2 or exc.process is None or not _port_in_use(exc.process):
                raise
            reroll()
    raise AssertionError("unreachable")


def _start_orthanc(tools: SystemTools, pacs: RunningPacs, timeout: float) -> PacsProcess:
    workdir = pacs.workdir / "orthanc"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "orthanc.json"
    settings = _orthanc_config(workdir, pacs.orthanc_port, pacs.users, tools.dicomweb_plugin)
    config.write_text(json.dumps(settings, indent=2))
    # --no-jobs: nothing to resume from a previous run.
    process = _spawn(
        "Orthanc", [tools.orthanc, "--no-jobs", str(config)], workdir / "orthanc.log", workdir
    )
    url = f"{pacs.orthanc_url}/dicom-web/studies?limit=1"

    def ready() -> bool:
        # The DICOMweb root answering proves the plugin is loaded, not just the core.
        response = httpx.get(url, auth=pacs.admin_auth, timeout=2.0)
        return response.status_code == 200

    try:
        _wait_until(ready, process, f"Orthanc answering at {url}", timeout)
    except BaseException:  # KeyboardInterrupt too: never leave it running
        process.stop()
        raise
    return process


def _spawn_token_server(pacs: RunningPacs) -> PacsProcess:
    """Start the token server (not waiting for it): keys, users file, a port of its own.

    It binds a port the kernel picks and writes it to a file once listening, so no
    other process can take it in between (no retries needed).
    """
    try:  # here, not at the top: without them only the token layout is unavailable
        from .token_server import UserRecord, generate_keys, write_users
    except ImportError as exc:
        raise PacsSetupError(
            f"the test token server needs the Python package `{exc.name}`"
            " (PyJWT and cryptography: install the test extra, `pip install -e '.[test]'`)."
        ) from exc
    workdir = pacs.workdir / "token-server"
    workdir.mkdir(parents=True, exist_ok=True)
    generate_keys(pacs.token_keys_dir)
    users = workdir / "users.json"
    write_users(
        users,
        {
            name: UserRecord(name, pacs.token_users[name], display, can_edit)
            for name, (display, can_edit) in TOKEN_USERS.items()
        },
    )
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    return _spawn(
        "token server",
        [
            sys.executable, "-m", "tests.support.token_server",
            "--port", "0", "--port-file", str(port_file),
            "--keys", str(pacs.token_keys_dir), "--users", str(users),
        ],
        workdir / "token-server.log",
        workdir,
        env,
    )  # fmt: skip


def _wait_for_token_server(pacs: RunningPacs, process: PacsProcess, timeout: float) -> None:
    port_file = pacs.workdir / "token-server" / "port"

    def ready() -> bool:
        if not port_file.is_file():
            return False
        pacs.token_port = int(port_file.read_text())
        response = httpx.get(f"{pacs.token_server_admin_url}/health", timeout=2.0)
        return response.status_code == 200 and response.json().get("pid") == process.pid

    _wait_until(ready, process, f"the token server listening (port in {port_file})", timeout)


def _start_nginx(tools: SystemTools, pacs: RunningPacs, timeout: float) -> PacsProcess:
    workdir = pacs.workdir / "nginx"
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    certs = pacs.certificates
    config = workdir / "nginx.conf"
    basic = base64.b64encode(":".join(pacs.admin_auth).encode()).decode()
    gated_server = _NGINX_GATED_SERVER.format(
        gated_port=pacs.gated_port,
        leaf_cert=certs.leaf_cert,
        leaf_key=certs.leaf_key,
        orthanc_headers=_NGINX_ORTHANC_HEADERS.format(orthanc_basic=basic),
    )
    config.write_text(
        _NGINX_CONFIG.format(
            dir=workdir,
            port=pacs.port,
            expired_port=pacs.expired_port,
            default_buffers_port=pacs.default_buffers_port,
            orthanc_port=pacs.orthanc_port,
            token_port=pacs.token_port,
            leaf_cert=certs.leaf_cert,
            leaf_key=certs.leaf_key,
            expired_cert=certs.expired_cert,
            expired_key=certs.expired_key,
            locations=_NGINX_LOCATIONS.format(dcm4chee_aet=DCM4CHEE_AET),
            gated_server=gated_server,
        )
    )
    config.chmod(0o600)  # it holds zhiva-admin's Orthanc password
    # -e: the error log before the config is read, else nginx opens /var/log/nginx/.
    process = _spawn(
        "nginx",
        [tools.nginx, "-p", f"{workdir}/", "-c", str(config), "-e", "stderr"],
        workdir / "nginx.log",
        workdir,
    )
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    url = f"{pacs.base_url}/studies?limit=1"

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", pacs.expired_port), timeout=2.0):
            pass
        # Through TLS and the proxy to Orthanc: the whole chain works.
        response = httpx.get(url, auth=pacs.admin_auth, verify=context, timeout=2.0)
        return response.status_code == 200

    gated_url = f"{pacs.token_base_url}/studies?limit=1"

    def gate_ready() -> bool:
        # No token: the token server's 401 (nginx alone would answer 500) proves the
        # auth_request chain; a valid token reaching Orthanc is the tests' business.
        response = httpx.get(gated_url, verify=context, timeout=2.0)
        return response.status_code == 401 and "Bearer" in response.headers.get(
            "www-authenticate", ""
        )

    try:
        _wait_until(ready, process, f"nginx answering at {url}", timeout)
        _wait_until(
            gate_ready, process, f"the token gate refusing a request without token at {gated_url}",
            timeout,
        )  # fmt: skip
    except BaseException:  # KeyboardInterrupt too: never leave it running
        process.stop()
        raise
    return process


def start_test_pacs(
    workdir: Path, *, startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
) -> RunningPacs:
    """Start Orthanc and nginx in ``workdir``; the caller must `stop` the result.

    Prefer `run_test_pacs`, which stops it for you.
    """
    tools = find_system_tools()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    certificates = make_certificates(workdir / "tls", tools.openssl)
    pacs = RunningPacs(
        workdir=workdir,
        port=0,
        expired_port=0,
        orthanc_port=free_port(),
        users=MappingProxyType({name: secrets.token_urlsafe(18) for name in USERS}),
        certificates=certificates,
        token_users=MappingProxyType({name: secrets.token_urlsafe(18) for name in TOKEN_USERS}),
    )

    def reroll_orthanc() -> None:
        pacs.orthanc_port = free_port()

    def reroll_nginx() -> None:
        # All probe sockets open at once, so the ports differ.
        with socket.socket() as a, socket.socket() as b, socket.socket() as c, socket.socket() as d:
            for sock in (a, b, c, d):
                sock.bind(("127.0.0.1", 0))
            pacs.port, pacs.expired_port = a.getsockname()[1], b.getsockname()[1]
            pacs.gated_port = c.getsockname()[1]
            pacs.default_buffers_port = d.getsockname()[1]

    reroll_nginx()
    with _RUNNING_LOCK:
        _RUNNING.add(pacs)
    try:
        # The token server starts while Orthanc does: it is ready by the time nginx is.
        pacs.token_server = _spawn_token_server(pacs)
        pacs.orthanc = _start_with_port_retries(
            lambda: _start_orthanc(tools, pacs, startup_timeout), reroll_orthanc
        )
        _wait_for_token_server(pacs, pacs.token_server, startup_timeout)
        pacs.nginx = _start_with_port_retries(
            lambda: _start_nginx(tools, pacs, startup_timeout), reroll_nginx
        )
        # The gated port is known only now: the claims of new auth tokens name it.
        # Then counters from zero (the readiness probe went through verify).
        with httpx.Client(
            base_url=pacs.token_server_admin_url, timeout=5.0, trust_env=False
        ) as admin:
            admin.post(
                "/urls", json={"auth_url": pacs.auth_url, "pacs_url": pacs.token_base_url}
            ).raise_for_status()
            admin.post("/reset").raise_for_status()
    except BaseException:
        pacs.stop()
        raise
    return pacs


@contextlib.contextmanager
def run_test_pacs(
    workdir: Path,
    *,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    keep_storage: bool = False,
) -> Iterator[RunningPacs]:
    """Run the test PACS for the duration of a ``with`` block, stopping it however it ends.

    Afterwards Orthanc's storage (hundreds of MB) is deleted unless ``keep_storage``;
    configs and logs stay in ``workdir`` for post-mortems.
    """
    pacs = start_test_pacs(workdir, startup_timeout=startup_timeout)
    try:
        yield pacs
    finally:
        pacs.stop()
        if not keep_storage:
            for name in ("storage", "index"):
                shutil.rmtree(pacs.workdir / "orthanc" / name, ignore_errors=True)


# --- the fixture's value --------------------------------------------------------------


@dataclass(frozen=True)
class TestPacs:
    """The session's test PACS as tests see it (the `pacs` fixture).

    URLs use ``localhost`` (the certificate's only name); ``ip_base_url`` reaches the
    same server as ``127.0.0.1`` for hostname-mismatch tests. File paths are strings,
    as `net.ServerConfig.ca_file` takes them.
    """

    __test__: ClassVar[bool] = False  # a data class, not a pytest test class

    base_url: str  # https://localhost:<port>/zhiva/pacs (DICOMweb: QIDO, WADO-RS, STOW)
    wado_uri_url: str  # https://localhost:<port>/zhiva/wado
    origin: str  # https://localhost:<port>
    port: int
    ip_base_url: str  # https://127.0.0.1:<port>/zhiva/pacs: certificate name mismatch
    expired_base_url: str  # https://localhost:<expired_port>/zhiva/pacs: expired cert
    expired_port: int
    ca_file: str  # the test CA that issued both servers' certificates
    wrong_ca_file: str  # an unrelated CA
    orthanc_url: str  # http://127.0.0.1:<port>: Orthanc directly (admin, checks)
    users: Mapping[str, str]  # user name -> password: zhiva-admin, zhiva-editor, zhiva
    data: TestData
    workdir: str  # configs and logs of Orthanc and nginx
    # The token-gated layout (DESIGN.md §4), same certificate, its own port:
    token_origin: str  # https://localhost:<gated_port>
    token_base_url: str  # https://localhost:<gated_port>/zhiva/pacs: Bearer access token
    token_wado_uri_url: str  # https://localhost:<gated_port>/zhiva/wado
    gated_port: int
    auth_url: str  # https://localhost:<gated_port>/auth: the token server through nginx
    token_server_admin_url: str  # http://127.0.0.1:<port>/admin: test control, no nginx
    token_public_key: str  # PEM of the RS256 key the token server signs with
    token_private_key: str  # its private key, to forge tokens this server never issued
    token_users: Mapping[str, str]  # user name -> password (sign-in, sign-user)
    # The Basic layout again behind nginx's default 4 KiB proxy buffers (4 KiB records).
    default_buffers_base_url: str = ""

    @property
    def admin_auth(self) -> tuple[str, str]:
        """Basic credentials of ``zhiva-admin`` (every method)."""
        return self.auth("zhiva-admin")

    def auth(self, user: str) -> tuple[str, str]:
        """Basic credentials of ``user``: ``zhiva-editor`` may GET/POST, ``zhiva`` only GET."""
        return (user, self.users[user])

    @classmethod
    def from_running(cls, running: RunningPacs, data: TestData) -> TestPacs:
        return cls(
            base_url=running.base_url,
            wado_uri_url=running.wado_uri_url,
            origin=running.origin,
            port=running.port,
            ip_base_url=f"https://127.0.0.1:{running.port}/zhiva/pacs",
            expired_base_url=running.expired_base_url,
            expired_port=running.expired_port,
            ca_file=str(running.certificates.ca_file),
            wrong_ca_file=str(running.certificates.wrong_ca_file),
            orthanc_url=running.orthanc_url,
            users=running.users,
            data=data,
            workdir=str(running.workdir),
            token_origin=running.token_origin,
            token_base_url=running.token_base_url,
            token_wado_uri_url=running.token_wado_uri_url,
            gated_port=running.gated_port,
            auth_url=running.auth_url,
            token_server_admin_url=running.token_server_admin_url,
            token_public_key=str(running.token_keys_dir / "public.pem"),
            token_private_key=str(running.token_keys_dir / "private.pem"),
            token_users=running.token_users,
            default_buffers_base_url=running.default_buffers_base_url,
        )

    @property
    def access_log(self) -> Path:
        """nginx's access log: one line per request any client made (combined format)."""
        return Path(self.workdir) / "nginx" / "access.log"

    def access_mark(self) -> int:
        """Where the access log ends now: `requests_since` counts from here."""
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def requests_since(self, mark: int) -> list[str]:
        """The request lines (``GET /zhiva/pacs/... HTTP/1.1``) nginx logged after `mark`.

        nginx writes a line when a request ends, so every request that has been
        answered is there.
        """
        with self.access_log.open("rb") as log:
            log.seek(mark)
            text = log.read().decode("utf-8", "replace")
        return [line.split('"')[1] for line in text.splitlines() if line.count('"') >= 2]

    @property
    def dcm4chee_url(self) -> str:
        """``https://localhost:<port>/dcm4chee-arc``: the dcm4chee-style layout (AE title
        `DCM4CHEE_AET`, QIDO and WADO-RS under ``aets/<AET>/rs``, WADO-URI ``…/wado``)."""
        return f"{self.origin}/dcm4chee-arc"

    @property
    def token_server_url(self) -> str:
        """``tokenServer`` of the auth tokens: ``<auth_url>/generate-access-token``."""
        return f"{self.auth_url}/generate-access-token"

    @property
    def refresh_server_url(self) -> str:
        """``refreshServer`` of the auth tokens: ``<auth_url>/refresh-token``."""
        return f"{self.auth_url}/refresh-token"

    def token_can_edit(self, user: str) -> bool:
        """The token user's ``canEditResource``: zhiva-admin and zhiva-editor, not zhiva."""
        return TOKEN_USERS[user][1]
