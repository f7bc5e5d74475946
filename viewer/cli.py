"""The ``zhiva-viewer`` command line: the app, its checks, and ``servers`` for admins.

Every command goes through the same code the GUI uses (`viewer.settings`,
`net.check_server`); this module only parses arguments and prints. Exit codes: 0
success, 1 a check or an operation failed (including invalid server fields), 2 bad
usage, or no display for the GUI (`viewer.app`). ``--smoke PNG`` drives the real app
over the demo study and checks its own screenshot (the packaged binary's CI check).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TextIO, get_args

import msgspec

from net import AuthType, RenderingProtocol, ServerConfig, new_server_id

# Only what every run needs is imported here: the window's first frame must not wait
# for the server registry, pydicom or httpx (bench/startup.py measures it).
from .settings._atomic import ensure_private_dir
from .settings._errors import InvalidServer, SettingsError
from .settings._logging import register_secret, setup_logging, shutdown_logging
from .settings._paths import ENV_CONFIG_DIR, ENV_SERVERS_FILE, ENV_SERVERS_URL, resolve_paths
from .settings._paths import AppPaths as _AppPaths
from .settings._secrets import ENV_SECRET_STORE

if TYPE_CHECKING:
    from .app.main import App
    from .settings import SecretKind, ServerEntry, ServerRegistry

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

log = logging.getLogger("viewer.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_USAGE = """\
zhiva-viewer [--config-dir DIR] [--demo] [LINK]
       zhiva-viewer --version | --self-check | --smoke PNG
       zhiva-viewer [--config-dir DIR] servers COMMAND [ARGS]"""

_DESCRIPTION = """\
Zhiva Viewer: a desktop DICOM viewer for DICOMweb servers (PACS).

Without a command it opens the app. LINK is a configuration link from your
administrator (https://<host>/auth/oauth?token=... or zhiva-viewer://oauth?token=...)."""

_EPILOG = f"""\
server commands (zhiva-viewer servers COMMAND --help for each):
  servers list                     your servers, the organisation's and the presets
  servers show NAME                every field of one server (never its secrets)
  servers add NAME --url URL ...   add a server; --from NAME copies another first
  servers edit NAME ...            change fields (--name renames)
  servers remove NAME              remove a server and its passwords and tokens
  servers select NAME              the server the app opens with
  servers import FILE              add the servers of a server list (JSON)
  servers export FILE              write your servers as a server list (no secrets)
  servers test NAME                run every connection check; exit 0 if none failed
  servers link LINK [--ca-file F]  set a server up from a configuration link

NAME is a server's name or its id. Settings live in the platform's user config
directory unless --config-dir or {ENV_CONFIG_DIR} names another (portable installs,
tests). Organisation servers: /etc/xdg/zhiva-viewer/servers.json (and the other
$XDG_CONFIG_DIRS), the file in {ENV_SERVERS_FILE}, or the https URL in {ENV_SERVERS_URL}.
{ENV_SECRET_STORE}=file keeps passwords in a 0600 file instead of the OS keyring.

exit codes: 0 success, 1 a check or operation failed, 2 bad usage or no display."""


# --- argument parsing -----------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but `error` raises instead of exiting, so `main` returns the code."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


@dataclass(frozen=True)
class _FieldFlag:
    flag: str
    field: str
    help: str
    kind: Literal["str", "bool", "float", "path"] = "str"
    choices: tuple[str, ...] = ()
    metavar: str = "VALUE"


#: One flag per `ServerConfig` field except id and name (a test checks none is missing).
FIELD_FLAGS: tuple[_FieldFlag, ...] = (
    _FieldFlag("--url", "url", "Server URL, https://... (the DICOMweb base)", metavar="URL"),
    _FieldFlag("--auth", "auth_type", "Authentication Type", choices=tuple(get_args(AuthType))),
    _FieldFlag("--username", "username", "user name (Basic authentication)", metavar="USER"),
    _FieldFlag(
        "--auth-server-url", "auth_server_url", "Auth Server URL (Zhiva login)", metavar="URL"
    ),
    _FieldFlag(
        "--token-server", "token_server", "token exchange URL (from the token)", metavar="URL"
    ),
    _FieldFlag(
        "--refresh-server", "refresh_server", "token refresh URL (from the token)", metavar="URL"
    ),
    _FieldFlag("--uuid", "uuid", "Server UUID (version 4); 'new' generates one", metavar="UUID"),
    _FieldFlag("--postfix", "postfix", "Server Postfix", metavar="P"),
    _FieldFlag(
        "--qido-postfix", "qido_postfix", "QIDO Postfix (often rs, may be empty)", metavar="P"
    ),
    _FieldFlag("--wado-postfix", "wado_postfix", "WADO Postfix (often rs)", metavar="P"),
    _FieldFlag(
        "--wado-uri-postfix",
        "wado_uri_postfix",
        "WADO URI Postfix (/x = from the host root)",
        metavar="P",
    ),
    _FieldFlag(
        "--qido-supports-include-field",
        "qido_supports_include_field",
        "QIDO Supports Include Field",
        kind="bool",
    ),
    _FieldFlag(
        "--image-rendering",
        "image_rendering",
        "Image rendering protocol",
        choices=tuple(get_args(RenderingProtocol)),
    ),
    _FieldFlag(
        "--thumbnail-rendering",
        "thumbnail_rendering",
        "Thumbnail rendering protocol",
        choices=tuple(get_args(RenderingProtocol)),
    ),
    _FieldFlag("--lazy-load", "lazy_load", "Enable Study LazyLoad", kind="bool"),
    _FieldFlag("--fuzzy-matching", "fuzzy_matching", "Supports Fuzzy Matching", kind="bool"),
    _FieldFlag("--can-store", "can_store", "Can Store/Update Data", kind="bool"),
    _FieldFlag(
        "--ca-file", "ca_file", "CA certificate (PEM) for a self-signed server", kind="path"
    ),
    _FieldFlag("--connect-timeout", "connect_timeout", "connection timeout", kind="float"),
    _FieldFlag("--read-timeout", "read_timeout", "read timeout", kind="float"),
)


def _add_field_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server fields (as in Settings > Servers)")
    for spec in FIELD_FLAGS:
        kwargs: dict[str, Any] = {"dest": f"field_{spec.field}", "default": None}
        if spec.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif spec.kind == "float":
            kwargs["type"] = float
            kwargs["metavar"] = "SECONDS"
        elif spec.choices:
            kwargs["choices"] = spec.choices
        else:
            kwargs["metavar"] = "FILE" if spec.kind == "path" else spec.metavar
        group.add_argument(spec.flag, help=spec.help, **kwargs)
    secrets = parser.add_argument_group("secrets (stored in the OS keyring or a 0600 file)")
    once = secrets.add_mutually_exclusive_group()
    once.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the Basic password from the first line of standard input",
    )
    once.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the auth token (a JWT) from the first line of standard input",
    )


def _config_dir_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument(
        "--config-dir",
        metavar="DIR",
        # Sub-commands accept it too; SUPPRESS keeps their absence from erasing the
        # value given before the command.
        default=None if top else argparse.SUPPRESS,
        help=f"keep settings, secrets file, logs and cache in DIR (env: {ENV_CONFIG_DIR})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of the app itself (the form without ``servers``)."""
    parser = _Parser(
        prog="zhiva-viewer",
        usage=_USAGE,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_dir_option(parser, top=True)
    parser.add_argument("--demo", action="store_true", help="open the built-in demo study")
    once = parser.add_mutually_exclusive_group()
    once.add_argument("--version", action="store_true", help="print the version and exit")
    once.add_argument(
        "--self-check",
        action="store_true",
        help="check this installation without opening a window (settings, secrets, TLS, decoders)",
    )
    once.add_argument(
        "--smoke",
        metavar="PNG",
        help="open the demo study, render frames, write a screenshot to PNG, exit 0",
    )
    # bench/startup_frozen.py: open the window, print when the first frame is rendered
    # (time.monotonic(), the same clock in every process on Linux), exit. Not for users.
    once.add_argument("--first-frame-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("link", nargs="?", metavar="LINK", help="a configuration link")
    return parser


def build_servers_parser() -> argparse.ArgumentParser:
    """The parser of ``zhiva-viewer [--config-dir DIR] servers COMMAND ...``."""
    parser = _Parser(prog="zhiva-viewer", usage=_USAGE)
    _config_dir_option(parser, top=True)
    areas = parser.add_subparsers(dest="area", required=True, metavar="servers")
    servers = areas.add_parser(
        "servers",
        prog="zhiva-viewer servers",
        help="manage servers",
        description="Manage the servers the viewer can open (the same rules as Settings > Servers).",
        epilog="NAME is a server's name or its id.",
    )
    _config_dir_option(servers, top=False)
    commands = servers.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, prog=f"zhiva-viewer servers {name}", help=help_text, description=help_text
        )
        _config_dir_option(sub, top=False)
        return sub

    command("list", "list your servers, the organisation's and the presets")
    command("show", "show every field of a server (never its secrets)").add_argument("name")
    add = command("add", "add a server (validated as the settings form does)")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--from",
        dest="copy_from",
        metavar="SERVER",
        help="start from a copy of SERVER (e.g. a managed server or the Local Server preset)",
    )
    _add_field_flags(add)
    edit = command("edit", "change fields of one of your servers")
    edit.add_argument("name", metavar="NAME")
    edit.add_argument("--name", dest="new_name", metavar="NEW", help="rename the server")
    _add_field_flags(edit)
    command("remove", "remove a server and delete its passwords and tokens").add_argument("name")
    command("select", "make a server the one the app opens with").add_argument("name")
    command("import", "add the servers of a server list; '-' reads stdin").add_argument("file")
    command("export", "write your servers as a server list; '-' is stdout").add_argument("file")
    command("test", "run every connection check against a server").add_argument("name")
    link = command("link", "set a server up from a configuration link")
    link.add_argument("link", metavar="LINK")
    link.add_argument("--ca-file", metavar="FILE", help="CA certificate for a self-signed server")
    return parser


def _first_positional(args: Sequence[str]) -> str | None:
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--config-dir":
            skip = True
            continue
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


# --- output helpers -------------------------------------------------------------------


def _note(text: str, stream: TextIO | None = None) -> None:
    print(f"note: {text}", file=stream or sys.stderr)


def _read_stdin_line(what: str) -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise _UsageError(f"zhiva-viewer: error: no {what} on standard input")
    register_secret(line)
    return line


# --- servers commands -----------------------------------------------------------------


def _field_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for spec in FIELD_FLAGS:
        value = getattr(args, f"field_{spec.field}")
        if value is None:
            continue
        if spec.field == "uuid" and value == "new":
            import uuid

            value = str(uuid.uuid4())
        elif spec.kind == "path" and value:
            value = os.path.abspath(os.path.expanduser(value))
        changes[spec.field] = value
    return changes


def _secrets_from_stdin(args: argparse.Namespace, auth_type: str) -> tuple[str | None, str | None]:
    password = token = None
    if args.password_stdin:
        if auth_type != "basic":
            raise _UsageError("zhiva-viewer: error: --password-stdin needs --auth basic")
        password = _read_stdin_line("password")
    if args.token_stdin:
        if auth_type != "token":
            raise _UsageError("zhiva-viewer: error: --token-stdin needs --auth token")
        token = _read_stdin_line("token")
    return password, token


def _describe(entry: ServerEntry) -> str:
    if entry.kind == "managed":
        return f"managed ({entry.source})"
    if entry.kind == "preset":
        return "preset (not saved)"
    return "yours"


def _cmd_list(registry: ServerRegistry, args: argparse.Namespace) -> int:
    entries = registry.entries()
    selected = registry.selected()
    rows = [("", "NAME", "URL", "AUTH", "SOURCE")]
    for entry in entries:
        mark = "*" if selected is not None and entry.id == selected.id else ""
        rows.append((mark, entry.name, entry.config.url, entry.config.auth_type, _describe(entry)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if selected is None:
        print(
            "No server is selected yet: choose one with `zhiva-viewer servers select NAME`"
            + (" (the Local Server preset is offered)." if registry.presets else ".")
        )
    return EXIT_OK


def _cmd_show(registry: ServerRegistry, args: argparse.Namespace) -> int:
    entry = registry.find(args.name)
    selected = registry.selected()
    print(f"kind: {_describe(entry)}")
    print(f"selected: {'yes' if selected is not None and selected.id == entry.id else 'no'}")
    for key, value in msgspec.structs.asdict(entry.config).items():
        print(f"{key}: {value}")
    if entry.config.auth_type in ("basic", "token"):
        kind: SecretKind = "password" if entry.config.auth_type == "basic" else "token"
        stored = registry.secrets.has(entry.id, kind)
        where = f"stored in {registry.secrets.description}" if stored else "not stored"
        print(f"{kind}: {where}")
    return EXIT_OK


def _print_invalid(exc: InvalidServer) -> None:
    print("error: the server was not saved; invalid fields:", file=sys.stderr)
    for name, message in exc.errors.items():
        print(f"  {name}: {message}", file=sys.stderr)


def _cmd_add(registry: ServerRegistry, args: argparse.Namespace) -> int:
    changes = _field_changes(args)
    if args.copy_from is not None:
        base = registry.find(args.copy_from).config
    elif "url" not in changes:
        raise _UsageError("zhiva-viewer servers add: error: --url is required (or --from SERVER)")
    else:
        base = ServerConfig()
    config = msgspec.structs.replace(base, id=new_server_id(), name=args.name, **changes)
    password, token = _secrets_from_stdin(args, config.auth_type)
    registry.add(config, password=password, token=token)
    print(f"Added {config.name!r} (id {config.id}).")
    _secret_notes(registry, config, password, token)
    return EXIT_OK


def _secret_notes(
    registry: ServerRegistry, config: ServerConfig, password: str | None, token: str | None
) -> None:
    if (password or token) and registry.secrets.note:
        _note(registry.secrets.note)
    if (
        config.auth_type == "basic"
        and password is None
        and not registry.secrets.has(config.id, "password")
    ):
        _note(
            f"no password is stored for {config.name!r}: add one with "
            f"`zhiva-viewer servers edit {config.name!r} --password-stdin`."
        )


def _cmd_edit(registry: ServerRegistry, args: argparse.Namespace) -> int:
    changes = _field_changes(args)
    if args.new_name is not None:
        changes["name"] = args.new_name
    current = registry.find_editable(args.name).config
    password, token = _secrets_from_stdin(args, changes.get("auth_type", current.auth_type))
    if not changes and password is None and token is None:
        raise _UsageError("zhiva-viewer servers edit: error: nothing to change")
    updated = registry.edit(args.name, changes, password=password, token=token)
    print(f"Saved {updated.name!r}.")
    _secret_notes(registry, updated, password, token)
    return EXIT_OK


def _cmd_remove(registry: ServerRegistry, args: argparse.Namespace) -> int:
    removed = registry.remove(args.name)
    print(f"Removed {removed.name!r} and its stored passwords and tokens.")
    return EXIT_OK


def _cmd_select(registry: ServerRegistry, args: argparse.Namespace) -> int:
    entry = registry.select(args.name)
    print(f"Selected {entry.name!r}.")
    return EXIT_OK


def _cmd_import(registry: ServerRegistry, args: argparse.Namespace) -> int:
    if args.file == "-":
        data, source = sys.stdin.buffer.read(), "standard input"
    else:
        try:
            data, source = Path(args.file).read_bytes(), args.file
        except OSError as exc:
            print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_FAILED
    report = registry.import_servers(data, source=source)
    names = ", ".join(repr(c.name) for c in report.added) or "none"
    print(f"Imported {len(report.added)} server(s) from {source}: {names}.")
    if report.skipped:
        print("Already there, unchanged: " + ", ".join(repr(n) for n in report.skipped) + ".")
    for text in report.notes:
        _note(text)
    for text in report.warnings:
        print(f"warning: {text}", file=sys.stderr)
    return EXIT_OK


def _cmd_export(registry: ServerRegistry, args: argparse.Namespace) -> int:
    from .settings import atomic_write

    data = registry.export_servers()
    count = len(registry.settings.servers)
    if args.file == "-":
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return EXIT_OK
    try:
        atomic_write(Path(args.file).absolute(), data)
    except OSError as exc:
        print(f"error: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Exported {count} server(s) to {args.file} (without passwords or tokens).")
    return EXIT_OK


def _cmd_test(registry: ServerRegistry, args: argparse.Namespace) -> int:
    # Imported here: the window's first frame must not wait for pydicom and httpx.
    from net import DicomWebError, check_server
    from viewer.signin import auth_for

    entry = registry.find(args.name)
    config = entry.config
    try:
        # Token sessions are refreshed here when needed, and the new token is stored.
        auth = auth_for(registry, config)
    except DicomWebError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    log.info("testing server %s (%s)", config.name, config.url)
    result = check_server(config, auth)
    for check in result.results:
        print(check.line())
    failed = sum(r.status == "fail" for r in result.results)
    print(
        f"{config.name}: all checks passed."
        if result.ok
        else f"{config.name}: {failed} check(s) failed."
    )
    return EXIT_OK if result.ok else EXIT_FAILED


def _cmd_link(registry: ServerRegistry, args: argparse.Namespace) -> int:
    from net import DicomWebError
    from viewer.signin import configure_from_link

    # The link carries a one-off token: it is registered with the log redaction and
    # never echoed.
    try:
        result = configure_from_link(registry, args.link, ca_file=_absolute(args.ca_file))
    except (DicomWebError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    claims = result.claims
    verb = "Added" if result.created else "Updated"
    who = claims.name or claims.username or "unknown user"
    print(f"{verb} server {result.config.name!r} ({result.config.url}) and selected it.")
    print(
        f"Signed in as {who} ({claims.username}); "
        f"{'may store and edit data' if claims.can_edit else 'read-only'}."
    )
    return EXIT_OK


def _absolute(path: str | None) -> str:
    return str(Path(path).expanduser().absolute()) if path else ""


_COMMANDS: dict[str, Callable[[ServerRegistry, argparse.Namespace], int]] = {
    "list": _cmd_list,
    "show": _cmd_show,
    "add": _cmd_add,
    "edit": _cmd_edit,
    "remove": _cmd_remove,
    "select": _cmd_select,
    "import": _cmd_import,
    "export": _cmd_export,
    "test": _cmd_test,
    "link": _cmd_link,
}
#: Read-only commands need no fresh copy of the organisation's list from the network.
_FETCHES_ORGANISATION = {"list", "show", "test", "select", "add", "edit", "import", "link"}


def _run_servers(args: argparse.Namespace, paths: _AppPaths) -> int:
    from .settings import ServerRegistry

    if args.command == "link":
        register_secret_link(args.link)
    registry = ServerRegistry.open(paths, fetch_organisation=args.command in _FETCHES_ORGANISATION)
    for notice in registry.notices:
        _note(notice)
    log.info("servers %s", args.command)
    return _COMMANDS[args.command](registry, args)


def register_secret_link(link: str) -> None:
    """Keep the token of a configuration link out of the logs."""
    from urllib.parse import parse_qs, urlsplit

    try:
        query = parse_qs(urlsplit(link).query)
    except ValueError:
        return
    for value in query.get("token", []):
        register_secret(value)


# --- app-level modes ------------------------------------------------------------------


def _self_check(paths: _AppPaths) -> int:
    from .settings import ServerRegistry

    lines: list[tuple[str, str]] = []

    def report(status: str, text: str) -> None:
        lines.append((status, text))
        print(f"[{status}] {text}")

    try:
        ensure_private_dir(paths.config_dir)
        with tempfile.NamedTemporaryFile(dir=paths.config_dir, prefix=".self-check-"):
            pass
        report("pass", f"settings directory {paths.config_dir} is writable")
    except OSError as exc:
        report("fail", f"settings directory {paths.config_dir} is not writable: {exc}")
    try:
        registry = ServerRegistry.open(paths)
    except SettingsError as exc:
        report("fail", f"settings: {exc}")
    else:
        selected = registry.selected()
        report(
            "fail" if registry.store.read_only_reason else "pass",
            f"settings {paths.settings_file}: {len(registry.settings.servers)} saved server(s), "
            f"selected: {selected.name if selected else 'none'}",
        )
        for notice in registry.notices:
            report("note", notice)
        managed = len(registry.organisation.servers)
        report("pass", f"organisation servers: {managed}")
        report(
            "pass" if registry.presets else "fail",
            f"server presets: {', '.join(p.name for p in registry.presets) or 'none found'}",
        )
        report("pass", f"passwords and tokens: {registry.secrets.description}")
        if registry.secrets.note:
            report("note", registry.secrets.note)
    try:
        from net._tls import make_ssl_context

        make_ssl_context()
        report("pass", "TLS: the operating system's trust store is usable")
    except Exception as exc:  # any failure here is the finding itself
        report("fail", f"TLS trust store: {exc}")
    _check_assets(report)
    _check_decoders(report)
    _check_decoding(report)
    failed = sum(status == "fail" for status, _ in lines)
    print("self-check: " + ("all checks passed." if not failed else f"{failed} check(s) failed."))
    return EXIT_OK if not failed else EXIT_FAILED


#: The compressed transfer syntaxes the viewer must decode, by family, in the order the
#: self-check lists them (the packaged binary is checked against this list).
SELF_CHECK_SYNTAXES: tuple[tuple[str, str], ...] = (
    ("JPEG baseline", "1.2.840.10008.1.2.4.50"),
    ("JPEG extended (12-bit)", "1.2.840.10008.1.2.4.51"),
    ("JPEG lossless", "1.2.840.10008.1.2.4.57"),
    ("JPEG lossless SV1", "1.2.840.10008.1.2.4.70"),
    ("JPEG-LS lossless", "1.2.840.10008.1.2.4.80"),
    ("JPEG-LS near-lossless", "1.2.840.10008.1.2.4.81"),
    ("JPEG 2000 lossless", "1.2.840.10008.1.2.4.90"),
    ("JPEG 2000", "1.2.840.10008.1.2.4.91"),
    ("HTJ2K lossless", "1.2.840.10008.1.2.4.201"),
    ("HTJ2K lossless RPCL", "1.2.840.10008.1.2.4.202"),
    ("HTJ2K", "1.2.840.10008.1.2.4.203"),
    ("RLE lossless", "1.2.840.10008.1.2.5"),
)


def _check_decoders(report: Callable[[str, str], None]) -> None:
    """One line per compressed transfer syntax: available or not, and through which plugins."""
    try:
        from render import decoder_status
    except Exception as exc:  # a broken install is the finding itself
        report("fail", f"pixel decoders: cannot load the renderer: {exc}")
        return
    for label, ts in SELF_CHECK_SYNTAXES:
        status = decoder_status(ts)
        if status.available:
            plugins = ", ".join(status.plugins) or "built in"
            report("pass", f"decoder {label} ({ts}): {plugins}")
        else:
            hint = f": {status.install_hint}" if status.install_hint else ""
            report("fail", f"decoder {label} ({ts}): not available{hint}")


def _check_decoding(report: Callable[[str, str], None]) -> None:
    """Decode a small 12-bit frame of each lossless family: proof the plugins load and run.

    The frames are encoded here (imagecodecs, pydicom's RLE encoder) and must come back
    bit-exact through `render.decode_frame_bytes`, the path the viewer's loader takes.
    """
    try:
        import imagecodecs
        import numpy as np
        from pydicom.pixels.encoders.base import RLELosslessEncoder

        from render import PixelFormat, decode_frame_bytes
    except Exception as exc:  # a broken install is the finding itself
        report("fail", f"test decode: cannot load the codecs: {exc}")
        return
    rows = columns = 16
    image = ((np.arange(rows * columns, dtype=np.uint16) * 13) % 4096).reshape(rows, columns)
    encoders: dict[str, Callable[[], bytes]] = {
        "JPEG 2000": lambda: bytes(imagecodecs.jpeg2k_encode(image, level=0, codecformat="J2K")),
        "JPEG-LS": lambda: bytes(imagecodecs.jpegls_encode(image, level=0)),
        "JPEG lossless": lambda: bytes(imagecodecs.ljpeg_encode(image, bitspersample=12)),
        "RLE": lambda: bytes(
            RLELosslessEncoder.encode(
                image,
                rows=rows,
                columns=columns,
                samples_per_pixel=1,
                bits_allocated=16,
                bits_stored=12,
                pixel_representation=0,
                photometric_interpretation="MONOCHROME2",
                number_of_frames=1,
            )
        ),
    }
    syntaxes = {
        "JPEG 2000": "1.2.840.10008.1.2.4.90",
        "JPEG-LS": "1.2.840.10008.1.2.4.80",
        "JPEG lossless": "1.2.840.10008.1.2.4.70",
        "RLE": "1.2.840.10008.1.2.5",
    }
    fmt = PixelFormat(rows=rows, columns=columns, bits_stored=12)
    for name, encode in encoders.items():
        try:
            decoded = decode_frame_bytes(encode(), fmt, syntaxes[name]).pixels
            exact = bool(np.array_equal(decoded, image))
        except Exception as exc:  # the failure is the finding
            report("fail", f"test decode {name}: {type(exc).__name__}: {exc}")
            continue
        if exact:
            report("pass", f"test decode {name}: a 12-bit frame came back bit-exact")
        else:
            report("fail", f"test decode {name}: the decoded frame differs")


def _check_assets(report: Callable[[str, str], None]) -> None:
    from .settings._paths import find_assets_dir

    assets = find_assets_dir()
    fonts = sorted(assets.glob("fonts/*.[ot]tf")) if assets is not None else []
    if assets is None or not fonts:
        report("fail", "assets (fonts, presets): not found; the window falls back to defaults")
    else:
        report("pass", f"assets {assets}: {len(fonts)} font file(s)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zhiva-viewer")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _run_app(args: argparse.Namespace, paths: _AppPaths) -> int:
    if args.version:
        frozen = " (packaged)" if getattr(sys, "frozen", False) else ""
        print(f"zhiva-viewer {_version()}{frozen}")
        return EXIT_OK
    if args.self_check:
        return _self_check(paths)
    if args.smoke:
        return _smoke(Path(args.smoke), config_dir=args.config_dir)
    if args.first_frame_probe:
        from .app.main import run

        def first_frame(app: App) -> bool:
            print(f"first-frame {time.monotonic():.6f}", flush=True)
            return False

        return run(config_dir=args.config_dir, on_frame=first_frame)
    return _run_gui(args, paths)


#: The demo slice the smoke test scrolls to (not the first: scrolling is part of it).
SMOKE_SLICE = 5
#: Give up when the demo has not been shown and captured by then (first run included).
SMOKE_TIMEOUT_S = 60.0


class _SmokeRun:
    """`run`'s per-frame hook for ``--smoke``: demo shown -> slice -> screenshot -> stop.

    Each step waits for the app's own state (no sleeps); a state change needs 2 rendered
    frames before a screenshot shows it (DESIGN.md section 6).
    """

    def __init__(self, out: Path, *, timeout: float = SMOKE_TIMEOUT_S) -> None:
        self.out = out
        self.deadline = time.monotonic() + timeout
        self.step = "load"
        self.error: str | None = None
        self.expected: int | None = None
        self.box: tuple[int, int, int, int] | None = None
        self.image_size: tuple[int, int] | None = None
        self._mark = 0
        self._settle = 0

    def __call__(self, app: App) -> bool:
        if time.monotonic() > self.deadline:
            self.error = f"timed out after {SMOKE_TIMEOUT_S:g} s at step {self.step!r}"
            return False
        page = app.viewer_page
        loader = app.loaders[-1] if app.loaders else None
        if page is None or loader is None or loader.layout is None or not app.viewer.count:
            return True
        target = min(SMOKE_SLICE, app.viewer.count - 1)
        if self.step == "load":
            if page.slot == "ready" and loader.frame(target) is not None:
                self.expected = int(loader.layout.header(target).InstanceNumber) - 1
                self._mark = page.rendered_slices
                app.viewer.go(target)
                self.step = "show"
        elif self.step == "show":
            shown = app.viewer.index == target and page.rendered_slices > self._mark
            if shown and page.slot == "ready" and page.image_box() is not None:
                self._settle += 1
                if self._settle >= 2:
                    self.box = page.image_box()
                    self.image_size = app.viewer.image_size
                    self.out.unlink(missing_ok=True)
                    import dearpygui.dearpygui as dpg

                    dpg.output_frame_buffer(file=str(self.out))
                    self.step = "capture"
        elif self.step == "capture":
            return not (self.out.exists() and self.out.stat().st_size > 0)
        return True


def _smoke(out: Path, *, config_dir: str | None) -> int:
    """Open the demo study in the real app, show slice SMOKE_SLICE, write a screenshot.

    Settings come from a throw-away directory unless --config-dir names one, so the
    smoke test never touches the user's servers. Exit 0 when the screenshot shows the
    expected slice (read back from the phantom's slice code), 2 without a display.
    """
    import numpy as np
    from PIL import Image

    from viewer.app.main import run
    from viewer.phantom import read_slice_code

    out = out.expanduser().absolute()
    if not out.parent.is_dir():
        print(f"error: {out.parent} is not a directory", file=sys.stderr)
        return EXIT_FAILED
    smoke = _SmokeRun(out)
    with tempfile.TemporaryDirectory(prefix="zhiva-smoke-") as scratch:
        code = run(config_dir=config_dir or scratch, demo=True, on_frame=smoke)
    if code != EXIT_OK:
        return code
    if smoke.error is not None:
        print(f"smoke: failed: {smoke.error}", file=sys.stderr)
        return EXIT_FAILED
    if smoke.step != "capture" or smoke.box is None or smoke.image_size is None:
        print("smoke: failed: the window closed before the screenshot", file=sys.stderr)
        return EXIT_FAILED
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("RGB").crop(smoke.box))
    columns, rows = smoke.image_size
    try:
        shown = read_slice_code(pixels, source_shape=(rows, columns))
    except ValueError as exc:
        print(f"smoke: failed: {out} shows no demo slice: {exc}", file=sys.stderr)
        return EXIT_FAILED
    x0, y0, x1, y1 = smoke.box
    print(f"smoke: wrote {out}; image at {x0},{y0},{x1},{y1}; slice code {shown}")
    if shown != smoke.expected:
        print(f"smoke: failed: expected slice {smoke.expected}, saw {shown}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _run_gui(args: argparse.Namespace, paths: _AppPaths) -> int:
    """The desktop window (viewer.app); exit 2 with a message when there is no display."""
    from .app.main import run

    if args.link:
        # The link carries a one-off token: keep it out of the logs from here on.
        register_secret_link(args.link)
        # A malformed or expired link is refused here, before a window opens for it;
        # the window does the rest (exchange, sign-in) and shows its progress.
        from net import DicomWebError, decode_token, parse_configuration_link

        try:
            decode_token(parse_configuration_link(args.link))
        except DicomWebError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
    log.info("opening the window (settings in %s)", paths.config_dir)
    return run(config_dir=args.config_dir, link=args.link, demo=args.demo)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    servers_mode = _first_positional(args_list) == "servers"
    parser = build_servers_parser() if servers_mode else build_parser()
    try:
        args = parser.parse_args(args_list)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help, or argparse's own exits
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    paths = resolve_paths(args.config_dir)
    try:
        setup_logging(paths.log_dir)
    except OSError as exc:
        _note(f"logging to {paths.log_dir} is off: {exc}")
    try:
        if servers_mode:
            return _run_servers(args, paths)
        return _run_app(args, paths)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except InvalidServer as exc:
        _print_invalid(exc)
        return EXIT_FAILED
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        shutdown_logging()
