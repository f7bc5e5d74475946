"""The quirks front: a proxy of the suite's own that makes the test PACS behave like
other DICOMweb servers, one documented quirk per switch (docs/server-quirks.md).

It sits between nginx and the real Orthanc: nginx (TLS, the Zhiva layout
``/zhiva/pacs`` + ``/zhiva/wado`` — or, as the `layout` switch says, the generic
``/dicomweb`` or ``/qido-rs`` + ``/wado-rs`` with WADO-URI at ``/wado`` — on a port of
its own) proxies to this process, which
forwards to Orthanc and bends the exchange as the switches say — refusing series-level
retrieve as AWS HealthImaging does, capping ``limit`` and answering 204 past the end as
Azure does, serving frames in HTJ2K, refusing ``transfer-syntax=*``, rewriting
BulkDataURIs, and so on. Everything it does not bend it streams through unchanged.

The switches are shared by the session (one proxy): a test sets them with
`QuirksFront.switched` (a context manager that puts the defaults back) and reads what
the proxy saw (`requests`, `max_in_flight`) to check what the client sent. The control
endpoints (``/_quirks/...``) listen on the proxy's loopback port only; nginx proxies
the DICOMweb paths alone.

Run: ``python -m tests.support.quirks --upstream http://127.0.0.1:PORT --port-file F``
(it binds a kernel-chosen port and writes it to the file once listening). The
`run_quirks_front` context manager starts it and its nginx for a running test PACS.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import posixpath
import re
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

__all__ = ["QuirksFront", "Switches", "run_quirks_front"]

#: The VRs Azure's metadata leaves out entirely (its conformance statement).
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: What Azure returns for a study at most without includefield (conformance statement
#: v2, "Default Study tags"), plus the UIDs every level needs.
MINIMAL_QIDO_TAGS = frozenset(
    {
        "00080020", "00080050", "00081030", "00080090", "00100010", "00100020", "00100030",
        "0020000D", "00080060", "0020000E", "00080018", "00080016", "00080005",
    }
)  # fmt: skip
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_WRONG_HOST = "http://pacs-internal.invalid:8042"
_CHUNK = 1024 * 1024


@dataclass
class Switches:
    """What the front bends. Every default is "pass through unchanged"."""

    #: Status answered to study- and series-level retrieve (AWS HealthImaging: none).
    series_retrieve: int | None = None
    #: Status answered to instance retrieve (static DICOMweb: frames and metadata only).
    instance_retrieve: int | None = None
    #: A ``limit`` above this answers 400 (Azure: 1..200).
    limit_cap: int | None = None
    #: An ``offset`` past the last result answers 204 No Content (Azure).
    offset_past_end_204: bool = False
    #: Each page after the first starts this many results early (repeats across pages).
    page_overlap: int = 0
    #: Searches never list more than this many results; an offset at or past it is
    #: refused with 400 (AWS HealthImaging: 10,000 records).
    qido_ceiling: int | None = None
    #: QIDO answers only UIDs and Azure's default study attributes; includefield ignored.
    qido_minimal: bool = False
    #: ``"quoted"``: refuse ``type=`` without quotes (some .NET servers); ``"unquoted"``:
    #: refuse ``type="..."`` (some Java servers); ``""``: either.
    accept_quotes: str = ""
    #: ``"omit"`` (Azure: no binary elements at all), ``"relative"``, ``"wrong-host"``.
    bulk_data: str = ""
    #: Frames are answered in HTJ2K lossless (``image/jphc``), AWS HealthImaging's default.
    frames_htj2k: bool = False
    #: 406 for ``transfer-syntax=*``.
    refuse_any_syntax: bool = False
    #: 406 for any ``transfer-syntax`` parameter (dcm4chee has done this).
    refuse_syntax_param: bool = False
    #: Without a transfer-syntax, answer explicit little endian (Google).
    default_uncompressed: bool = False
    #: Serve ``/thumbnail`` (Orthanc has none) from ``/rendered``.
    thumbnail: bool = False
    #: Where DICOMweb is served: ``"zhiva"`` (``/zhiva/pacs``), ``"dicomweb"``
    #: (``/dicomweb``) or ``"split"`` (QIDO at ``/qido-rs``, the rest at ``/wado-rs``);
    #: every other root answers 404, as a server of that layout would.
    layout: str = "zhiva"
    #: False: no WADO-URI (``/zhiva/wado`` and ``/wado`` answer 404), as on the clouds.
    wado_uri: bool = True
    #: ``fuzzymatching=true`` finds a patient name by the start of any of its words, in
    #: any case (PS3.18 leaves what "fuzzy" means to the server); Orthanc ignores it.
    fuzzy_matching: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Switches:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown switches: {sorted(unknown)}")
        switches = cls(**dict(data))
        if switches.layout not in _LAYOUTS:
            raise ValueError(f"unknown layout {switches.layout!r}; choose from {_LAYOUTS}")
        return switches


# --- the proxy process ----------------------------------------------------------------


@dataclass
class _State:
    upstream: tuple[str, int]
    switches: Switches = field(default_factory=Switches)
    log: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_QIDO = re.compile(r"/(studies|series|instances)$")
_RETRIEVE_SERIES = re.compile(r"/studies/[^/]+(/series/[^/]+)?$")
_RETRIEVE_INSTANCE = re.compile(r"/studies/[^/]+/series/[^/]+/instances/[^/]+$")
_FRAMES = re.compile(r"/studies/([^/]+)/series/([^/]+)/instances/([^/]+)/frames/([0-9,]+)$")


_LAYOUTS = ("zhiva", "dicomweb", "split")


def _moved(path: str, layout: str) -> str | None:
    """The path under Orthanc's ``/dicom-web`` for a DICOMweb path of `layout`, None
    when that root is not where the layout serves it. nginx forwards ``/zhiva/pacs/`` as
    ``/dicom-web/`` and the generic roots as ``/_layout/<root>/``."""
    if path.startswith("/dicom-web/"):
        return path if layout == "zhiva" else None
    root, _, rest = path[len("/_layout/") :].partition("/")
    moved = f"/dicom-web/{rest}"
    if layout == "dicomweb" and root == "dicomweb":
        return moved
    if layout == "split" and root in ("qido-rs", "wado-rs"):
        return moved if (_kind(moved) == "qido") == (root == "qido-rs") else None
    return None


def _name_starts_with(item: Mapping[str, Any], prefix: str) -> bool:
    """Whether a word of the result's Patient Name starts with `prefix`, in any case."""
    values = item.get("00100010", {}).get("Value") or [{}]
    words = re.split(r"[\^ ]+", str(values[0].get("Alphabetic", "")).casefold())
    return any(word.startswith(prefix.casefold()) for word in words if word)


def _kind(path: str) -> str:
    if not path.startswith("/dicom-web/"):
        return "other"
    tail = path[len("/dicom-web") :]
    if _QIDO.search(tail):
        return "qido"
    if tail.endswith("/metadata"):
        return "metadata"
    if _FRAMES.search(tail):
        return "frames"
    if tail.endswith(("/rendered", "/thumbnail")):
        return "rendered"
    if "/bulk/" in tail:
        return "bulk"
    if _RETRIEVE_INSTANCE.search(tail):
        return "instance"
    if _RETRIEVE_SERIES.search(tail):
        return "series"
    return "other"


def _multipart(parts: list[tuple[str, bytes]], root_type: str) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for content_type, body in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode())
        chunks.append(body)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="{root_type}"; boundary={boundary}'


def _split_multipart(body: bytes, content_type: str) -> list[bytes]:
    match = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
    if match is None:
        return [body]
    delimiter = b"--" + match.group(1).encode()
    out = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, rest = chunk.partition(b"\r\n\r\n")
        out.append(rest[:-2] if rest.endswith(b"\r\n") else rest)
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    #: The request being answered (None: a control request, not logged) and whether
    #: its log entry is written (`send_response`).
    _kind: str | None = None
    _recorded = False

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is ours (see _record); stderr stays quiet

    # -- plumbing -------------------------------------------------------------------------

    @property
    def state(self) -> _State:
        return self.server.state

    def _upstream(self) -> http.client.HTTPConnection:
        local = self.server.local
        conn: http.client.HTTPConnection | None = getattr(local, "conn", None)
        last = getattr(local, "last_used", 0.0)
        # Orthanc drops idle keep-alive connections after ~1 s (DESIGN.md §5).
        if conn is None or time.monotonic() - last > 0.5:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(*self.state.upstream, timeout=120)
            local.conn = conn
        local.last_used = time.monotonic()
        return conn

    def _forward(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> http.client.HTTPResponse:
        for attempt in (1, 2):
            conn = self._upstream()
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                return conn.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self.server.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, status: int, why: str) -> None:
        self._send(status, json.dumps({"message": why}).encode(), "application/json")

    def send_response(self, code: int, message: str | None = None) -> None:
        # Logged before the status line goes out: a test that reads the log as soon as
        # its client has the answer finds the request there (recorded after the answer,
        # a busy machine let the test look first).
        if self._kind is not None and not self._recorded:
            self._recorded = True
            self._record(self._kind, code)
        super().send_response(code, message)

    def _record(self, kind: str, status: int) -> None:
        split = urlsplit(self.path)
        with self.state.lock:
            self.state.log.append(
                {
                    "method": self.command,
                    "path": split.path,
                    "query": dict(parse_qsl(split.query)),
                    "accept": self.headers.get("Accept", ""),
                    "kind": kind,
                    "status": status,
                }
            )
            del self.state.log[:-2000]

    # -- control endpoints --------------------------------------------------------------

    def _control(self) -> None:
        state = self.state
        if self.path == "/_quirks/switches" and self.command == "PUT":
            length = int(self.headers.get("Content-Length", "0"))
            try:
                switches = Switches.from_json(json.loads(self.rfile.read(length) or b"{}"))
            except (ValueError, TypeError) as exc:
                self._refuse(400, str(exc))
                return
            with state.lock:
                state.switches = switches
            self._send(200, b"{}", "application/json")
        elif self.path == "/_quirks/switches":
            self._send(
                200, json.dumps(dataclasses.asdict(state.switches)).encode(), "application/json"
            )
        elif self.path == "/_quirks/log":
            with state.lock:
                body = json.dumps(
                    {"requests": state.log, "max_in_flight": state.max_in_flight}
                ).encode()
            self._send(200, body, "application/json")
        elif self.path == "/_quirks/reset-log" and self.command == "POST":
            with state.lock:
                state.log.clear()
                state.max_in_flight = 0
            self._send(200, b"{}", "application/json")
        else:
            self._refuse(404, "no such control endpoint")

    # -- requests -----------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        if self.path.startswith("/_quirks/"):
            self._control()
            return
        state = self.state
        with state.lock:
            switches = dataclasses.replace(state.switches)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        # Logged under the path as asked until it is moved to Orthanc's root below.
        self._kind, self._recorded = _kind(urlsplit(self.path).path), False
        status = 502
        try:
            split = urlsplit(self.path)
            if split.path.startswith(("/dicom-web/", "/_layout/")):
                moved = _moved(split.path, switches.layout)
                if moved is None:
                    self._refuse(404, "No DICOMweb service at this path.")
                    status = 404
                    return
                self.path = moved + (f"?{split.query}" if split.query else "")
            elif split.path == "/wado" and not switches.wado_uri:
                self._refuse(404, "No WADO-URI service here.")
                status = 404
                return
            self._kind = _kind(urlsplit(self.path).path)  # where it was moved to
            status = self._bend(self._kind, switches)
        except (BrokenPipeError, ConnectionResetError):
            status = 499  # the client went away mid-answer
        finally:
            with state.lock:
                state.in_flight -= 1
            if not self._recorded and self._kind is not None:  # no answer was sent
                self._recorded = True
                self._record(self._kind, status)
            self._kind = None

    def _bend(self, kind: str, sw: Switches) -> int:
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        accept = self.headers.get("Accept", "")
        # Canonical names: a switch replaces Accept without leaving the client's copy.
        headers = {
            name.title(): value
            for name, value in self.headers.items()
            if name.lower() in ("authorization", "accept", "content-type", "host", "forwarded")
        }
        body: bytes | None = None
        if self.command == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers["Content-Length"] = str(len(body))

        if kind == "series" and sw.series_retrieve:
            self._refuse(sw.series_retrieve, "Series and study retrieve are not supported.")
            return sw.series_retrieve
        if kind == "instance" and sw.instance_retrieve:
            self._refuse(sw.instance_retrieve, "Instance retrieve is not supported.")
            return sw.instance_retrieve
        if kind in ("series", "instance", "frames"):
            refused = self._check_accept(accept, sw)
            if refused:
                return refused
            if sw.default_uncompressed and "transfer-syntax" not in accept:
                media = "application/dicom" if kind != "frames" else "application/octet-stream"
                headers["Accept"] = (
                    f'multipart/related; type="{media}"; transfer-syntax={EXPLICIT_LE}'
                )
        if kind == "frames" and sw.frames_htj2k:
            return self._frames_htj2k(path, headers, accept)
        if kind == "rendered" and path.endswith("/thumbnail"):
            if not sw.thumbnail:
                self._refuse(404, "No thumbnails here.")
                return 404
            path = path[: -len("/thumbnail")] + "/rendered"
        if kind == "qido":
            return self._qido(path, query, headers, sw)
        if kind == "metadata" and sw.bulk_data:
            return self._metadata(path, split.query, headers, sw)
        return self._pass(path + (f"?{split.query}" if split.query else ""), headers, body)

    def _check_accept(self, accept: str, sw: Switches) -> int:
        if sw.accept_quotes == "quoted" and re.search(r"type=[^\"]", accept):
            self._refuse(400, "Malformed Accept header: quote the type parameter.")
            return 400
        if sw.accept_quotes == "unquoted" and 'type="' in accept:
            self._refuse(400, "Malformed Accept header: unexpected quotes.")
            return 400
        if sw.refuse_syntax_param and "transfer-syntax" in accept:
            self._refuse(406, "transfer-syntax is not accepted here.")
            return 406
        if sw.refuse_any_syntax and "transfer-syntax=*" in accept:
            self._refuse(406, "transfer-syntax=* is not supported.")
            return 406
        return 0

    def _pass(self, target: str, headers: Mapping[str, str], body: bytes | None) -> int:
        upstream = self._forward(self.command, target, headers, body)
        self.send_response(upstream.status)
        length = upstream.getheader("Content-Length")
        for name in ("Content-Type", "WWW-Authenticate", "Content-Location"):
            value = upstream.getheader(name)
            if value:
                self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", length)
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            upstream.read()
            return upstream.status
        while chunk := upstream.read(_CHUNK):
            if length is not None:
                self.wfile.write(chunk)
            else:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if length is None:
            self.wfile.write(b"0\r\n\r\n")
        return upstream.status

    def _read(self, target: str, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
        upstream = self._forward("GET", target, headers, None)
        return upstream.status, upstream.read(), upstream.getheader("Content-Type", "")

    def _qido(self, path: str, query: dict[str, str], headers: dict[str, str], sw: Switches) -> int:
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
        offset = int(query["offset"]) if query.get("offset", "").isdigit() else 0
        if sw.limit_cap is not None and limit is not None and limit > sw.limit_cap:
            self._refuse(400, f"The limit must be between 1 and {sw.limit_cap}.")
            return 400
        if sw.qido_ceiling is not None:
            if offset >= sw.qido_ceiling:
                self._refuse(400, f"At most {sw.qido_ceiling} results can be listed.")
                return 400
            if limit is None or offset + limit > sw.qido_ceiling:
                limit = sw.qido_ceiling - offset
        if sw.page_overlap and offset:
            offset = max(0, offset - sw.page_overlap)
        if sw.qido_minimal:
            query.pop("includefield", None)
        name = query.get("PatientName", "")
        wildcard = "*" in name or "?" in name
        fuzzy = bool(sw.fuzzy_matching and query.get("fuzzymatching") == "true" and name)
        fuzzy = fuzzy and not wildcard
        if fuzzy:
            # Matched here, on the whole list: Orthanc's own name matching cannot say
            # "a word starts with", and some of pydicom's files it cannot find by name.
            for key in ("PatientName", "limit", "offset"):
                query.pop(key, None)
        elif limit is not None:
            query["limit"] = str(limit)
        if offset and not fuzzy:
            query["offset"] = str(offset)
        else:
            query.pop("offset", None)
        # Commas kept: Orthanc reads an encoded one (%2C) as part of one includefield.
        target = f"{path}?{urlencode(query, safe=',')}"
        status, body, content_type = self._read(target, headers)
        if status != 200:
            self._send(status, body, content_type)
            return status
        items = json.loads(body or b"[]")
        if fuzzy:
            found = [item for item in items if _name_starts_with(item, name)]
            items = found[offset : None if limit is None else offset + limit]
        if not items and offset and sw.offset_past_end_204:
            self._send(204, b"", "")
            return 204
        if sw.qido_minimal:
            items = [{k: v for k, v in item.items() if k in MINIMAL_QIDO_TAGS} for item in items]
        self._send(200, json.dumps(items).encode(), "application/dicom+json")
        return 200

    def _metadata(self, path: str, query: str, headers: dict[str, str], sw: Switches) -> int:
        status, body, content_type = self._read(path + (f"?{query}" if query else ""), headers)
        if status != 200:
            self._send(status, body, content_type)
            return status
        items = json.loads(body)
        # The path the client asked for, as nginx forwarded it: relative URIs resolve
        # against the client's URL, whose prefix only nginx knows.
        request_dir = posixpath.dirname(path)
        for item in items:
            self._bend_bulk(item, sw.bulk_data, request_dir)
        self._send(200, json.dumps(items).encode(), "application/dicom+json")
        return 200

    def _bend_bulk(self, attrs: dict[str, Any], mode: str, request_dir: str) -> None:
        for tag in list(attrs):
            element = attrs[tag]
            if not isinstance(element, dict):
                continue
            if mode == "omit" and element.get("vr") in BINARY_VRS:
                del attrs[tag]
                continue
            for item in element.get("Value", []) if element.get("vr") == "SQ" else []:
                if isinstance(item, dict):
                    self._bend_bulk(item, mode, request_dir)
            uri = element.get("BulkDataURI")
            if not isinstance(uri, str) or "/dicom-web/" not in uri:
                continue
            target = "/dicom-web/" + uri.split("/dicom-web/", 1)[1]
            if mode == "relative":
                element["BulkDataURI"] = posixpath.relpath(target, request_dir)
            elif mode == "wrong-host":
                element["BulkDataURI"] = _WRONG_HOST + target

    def _frames_htj2k(self, path: str, headers: dict[str, str], accept: str) -> int:
        allows_htj2k = (
            "transfer-syntax=*" in accept
            or "image/jphc" in accept
            or ("1.2.840.10008.1.2.4.20" in accept)
        )
        if not allows_htj2k and EXPLICIT_LE not in accept:
            self._refuse(406, "Frames are available as HTJ2K or explicit little endian.")
            return 406
        native = dict(headers)
        native["Accept"] = (
            f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_LE}'
        )
        status, body, content_type = self._read(path, native)
        if status != 200 or not allows_htj2k:
            self._send(status, body, content_type)
            return status
        import imagecodecs  # only this switch needs it
        import numpy as np

        instance = path.rsplit("/frames/", 1)[0]
        meta_status, meta, _ = self._read(
            f"{instance}/metadata", {**headers, "Accept": "application/dicom+json"}
        )
        if meta_status != 200:
            self._send(meta_status, meta, "application/json")
            return meta_status
        attrs = json.loads(meta)[0]

        def value(tag: str) -> int:
            return int(attrs[tag]["Value"][0])

        rows, columns, bits = value("00280010"), value("00280011"), value("00280100")
        signed = value("00280103") == 1
        samples = value("00280002") if "00280002" in attrs else 1
        dtype = np.dtype(f"<{'i' if signed else 'u'}{max(1, bits // 8)}")
        parts = []
        for raw in _split_multipart(body, content_type):
            shape = (rows, columns, samples) if samples > 1 else (rows, columns)
            pixels = np.frombuffer(raw, dtype=dtype).reshape(shape)
            parts.append(
                (f"image/jphc; transfer-syntax={HTJ2K_LOSSLESS}", imagecodecs.htj2k_encode(pixels))
            )
        answer, answer_type = _multipart(parts, "image/jphc")
        self._send(200, answer, answer_type)
        return 200


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # More simultaneous connections than nginx keeps alive to us.
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.local = threading.local()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="Orthanc's URL, http://127.0.0.1:PORT")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="written with the port once listening")
    args = parser.parse_args(argv)
    upstream = urlsplit(args.upstream)
    state = _State(upstream=(upstream.hostname or "127.0.0.1", upstream.port or 80))
    server = _Server(("127.0.0.1", args.port), state)
    if args.port_file is not None:
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(str(server.server_address[1]))
        partial.replace(args.port_file)
    print(f"quirks front on port {server.server_address[1]} -> {args.upstream}", flush=True)
    server.serve_forever()


# --- the fixture's side ---------------------------------------------------------------

_NGINX_FRONT = """\
# Written by tests/support/quirks.py: TLS in front of the quirks proxy.
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/client_body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    default_type application/octet-stream;
    server_tokens off;
    upstream quirks {{
        server 127.0.0.1:{proxy_port};
        keepalive 16;
    }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_buffering off;
    proxy_buffer_size 64k;
    proxy_buffers 8 64k;
    proxy_busy_buffers_size 128k;
    proxy_request_buffering off;
    client_max_body_size 0;
    proxy_read_timeout 300s;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {leaf_cert};
        ssl_certificate_key {leaf_key};
        location /zhiva/pacs/ {{ proxy_pass http://quirks/dicom-web/; }}
        location /zhiva/wado {{ proxy_pass http://quirks/wado; }}
        # The generic layouts (the `layout` switch says which one answers).
        location /dicomweb/ {{ proxy_pass http://quirks/_layout/dicomweb/; }}
        location /qido-rs/ {{ proxy_pass http://quirks/_layout/qido-rs/; }}
        location /wado-rs/ {{ proxy_pass http://quirks/_layout/wado-rs/; }}
        location /wado {{ proxy_pass http://quirks/wado; }}
        location / {{ return 404; }}
    }}
}}
"""


class QuirksFront:
    """The running quirks front as tests see it (the `quirks` fixture)."""

    def __init__(self, origin: str, control_url: str) -> None:
        self.origin = origin
        self.base_url = f"{origin}/zhiva/pacs"
        self.wado_uri_url = f"{origin}/zhiva/wado"
        self._control = httpx.Client(base_url=control_url, timeout=10.0, trust_env=False)

    def close(self) -> None:
        self._control.close()

    def set(self, switches: Switches) -> None:
        self._control.put("/_quirks/switches", json=dataclasses.asdict(switches)).raise_for_status()

    @contextlib.contextmanager
    def switched(self, **switches: Any) -> Iterator[QuirksFront]:
        """The front with these switches on (and its request log cleared) for a block."""
        self.set(Switches(**switches))
        self.clear_log()
        try:
            yield self
        finally:
            self.set(Switches())

    def clear_log(self) -> None:
        self._control.post("/_quirks/reset-log").raise_for_status()

    def requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        """What the front saw since the log was cleared (``kind``: qido, series, ...)."""
        entries: list[dict[str, Any]] = self._control.get("/_quirks/log").json()["requests"]
        return [e for e in entries if kind is None or e["kind"] == kind]

    @property
    def max_in_flight(self) -> int:
        """The most requests the front had open at once since the log was cleared."""
        return int(self._control.get("/_quirks/log").json()["max_in_flight"])


@contextlib.contextmanager
def run_quirks_front(
    *,
    workdir: Path,
    orthanc_url: str,
    leaf_cert: str,
    leaf_key: str,
    ca_file: str,
    startup_timeout: float = 30.0,
) -> Iterator[QuirksFront]:
    """Start the proxy and its nginx in ``workdir``; stop both when the block ends."""
    from .pacs import _spawn, _wait_until, find_system_tools, free_port

    tools = find_system_tools()
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "proxy.port"
    port_file.unlink(missing_ok=True)
    repo = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": str(repo), "PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"}
    proxy = _spawn(
        "quirks front",
        [sys.executable, "-m", "tests.support.quirks", "--upstream", orthanc_url,
         "--port-file", str(port_file)],
        workdir / "proxy.log",
        workdir,
        env,
    )  # fmt: skip
    processes = [proxy]
    try:
        _wait_until(
            port_file.is_file, proxy, f"the quirks front's port in {port_file}", startup_timeout
        )
        proxy_port = int(port_file.read_text())
        nginx_dir = workdir / "nginx"
        (nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
        port = free_port()
        (nginx_dir / "nginx.conf").write_text(
            _NGINX_FRONT.format(
                dir=nginx_dir,
                proxy_port=proxy_port,
                port=port,
                leaf_cert=leaf_cert,
                leaf_key=leaf_key,
            )
        )
        nginx = _spawn(
            "quirks nginx",
            [
                tools.nginx,
                "-p",
                f"{nginx_dir}/",
                "-c",
                str(nginx_dir / "nginx.conf"),
                "-e",
                "stderr",
            ],
            nginx_dir / "nginx.log",
            nginx_dir,
        )
        processes.append(nginx)
        context = ssl.create_default_context(cafile=ca_file)

        def ready() -> bool:
            # Through TLS and the proxy to Orthanc: 401 without credentials proves it.
            response = httpx.get(
                f"https://localhost:{port}/zhiva/pacs/studies", verify=context, timeout=2.0
            )
            return response.status_code == 401

        _wait_until(ready, nginx, "the quirks front answering through nginx", startup_timeout)
        front = QuirksFront(f"https://localhost:{port}", f"http://127.0.0.1:{proxy_port}")
        try:
            yield front
        finally:
            front.close()
    finally:
        for process in reversed(processes):
            process.stop()


if __name__ == "__main__":
    main()
