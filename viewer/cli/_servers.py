"""``zhiva-viewer servers COMMAND``: the server admin commands, over the same
`ServerRegistry` and `net.check_server` the Settings page uses."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from net import SERVER_FIELDS, ServerConfig, ServerField, new_server_id

from ..settings._errors import InvalidServer, SettingsError
from ..settings._paths import AppPaths
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    USAGE,
    Parser,
    UsageError,
    config_dir_option,
    note,
    read_stdin_line,
    register_secret_link,
)

if TYPE_CHECKING:
    from ..settings import SecretKind, ServerEntry, ServerRegistry

__all__ = ["FIELD_FLAGS", "build_servers_parser", "print_invalid", "run_servers"]

log = logging.getLogger("viewer.cli")


#: The server fields that are command-line flags: every catalogue field with a flag
#: except the secrets, which are read from standard input (--password-stdin...).
FIELD_FLAGS: tuple[ServerField, ...] = tuple(
    spec for spec in SERVER_FIELDS if spec.flag and not spec.is_secret
)
_SECRET_FLAGS = tuple(spec for spec in SERVER_FIELDS if spec.flag and spec.is_secret)


def _flag_help(spec: ServerField) -> str:
    text = f"{spec.label}: {spec.help}"
    if spec.name == "uuid":
        text += " 'new' generates one."
    return text.replace("%", "%%")  # argparse formats help with %


def _add_field_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server fields (as in Settings > Servers)")
    for spec in FIELD_FLAGS:
        kwargs: dict[str, Any] = {"dest": f"field_{spec.name}", "default": None}
        if spec.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif spec.kind == "seconds":
            kwargs["type"] = float
            kwargs["metavar"] = spec.metavar
        elif spec.choices:
            kwargs["choices"] = spec.choices
        else:
            kwargs["metavar"] = spec.metavar
        group.add_argument(spec.flag, help=_flag_help(spec), **kwargs)
    secrets = parser.add_argument_group("secrets (stored in the OS keyring or a 0600 file)")
    once = secrets.add_mutually_exclusive_group()
    for spec in _SECRET_FLAGS:
        once.add_argument(
            spec.flag,
            action="store_true",
            help=f"read the {spec.label.lower()} from the first line of standard input",
        )


def build_servers_parser() -> argparse.ArgumentParser:
    """The parser of ``zhiva-viewer [--config-dir DIR] servers COMMAND ...``."""
    parser = Parser(prog="zhiva-viewer", usage=USAGE)
    config_dir_option(parser, top=True)
    areas = parser.add_subparsers(dest="area", required=True, metavar="servers")
    servers = areas.add_parser(
        "servers",
        prog="zhiva-viewer servers",
        help="manage servers",
        description="Manage the servers the viewer can open (the same rules as Settings > Servers).",
        epilog="NAME is a server's name or its id.",
    )
    config_dir_option(servers, top=False)
    commands = servers.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, prog=f"zhiva-viewer servers {name}", help=help_text, description=help_text
        )
        config_dir_option(sub, top=False)
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
    disc = command(
        "discover", "look at a host and propose how to set it up (no change unless --add)"
    )
    disc.add_argument(
        "url", metavar="URL", help="https://host[:port], or a DICOMweb URL pasted whole"
    )
    disc.add_argument("--add", metavar="NAME", help="add the proposed server under this name")
    disc.add_argument(
        "--username", metavar="USER", help="sign in with Basic as USER (with --password-stdin)"
    )
    disc.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the Basic password from the first line of standard input",
    )
    disc.add_argument("--ca-file", metavar="FILE", help="CA certificate for a self-signed server")
    link = command("link", "set a server up from a configuration link")
    link.add_argument("link", metavar="LINK")
    link.add_argument("--ca-file", metavar="FILE", help="CA certificate for a self-signed server")
    link.add_argument(
        "--replace",
        action="store_true",
        help="let the link change how an existing server with its URL signs in "
        "(authentication type, token servers, CA file); without it such a link is refused",
    )
    return parser


def _field_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for spec in FIELD_FLAGS:
        value = getattr(args, f"field_{spec.name}")
        if value is None:
            continue
        if spec.name == "uuid" and value == "new":
            import uuid

            value = str(uuid.uuid4())
        elif spec.kind == "path" and value:
            value = os.path.abspath(os.path.expanduser(value))
        changes[spec.name] = value
    return changes


def _secrets_from_stdin(args: argparse.Namespace, auth_type: str) -> tuple[str | None, str | None]:
    password = token = None
    if args.password_stdin:
        if auth_type != "basic":
            raise UsageError("zhiva-viewer: error: --password-stdin needs --auth basic")
        password = read_stdin_line("password")
    if args.token_stdin:
        if auth_type != "token":
            raise UsageError("zhiva-viewer: error: --token-stdin needs --auth token")
        token = read_stdin_line("token")
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


def print_invalid(exc: InvalidServer) -> None:
    print("error: the server was not saved; invalid fields:", file=sys.stderr)
    for name, message in exc.errors.items():
        print(f"  {name}: {message}", file=sys.stderr)


def _cmd_add(registry: ServerRegistry, args: argparse.Namespace) -> int:
    changes = _field_changes(args)
    if args.copy_from is not None:
        base = registry.find(args.copy_from).config
    elif "url" not in changes:
        raise UsageError("zhiva-viewer servers add: error: --url is required (or --from SERVER)")
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
        note(registry.secrets.note)
    if (
        config.auth_type == "basic"
        and password is None
        and not registry.secrets.has(config.id, "password")
    ):
        note(
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
        raise UsageError("zhiva-viewer servers edit: error: nothing to change")
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
        note(text)
    for text in report.warnings:
        print(f"warning: {text}", file=sys.stderr)
    return EXIT_OK


def _cmd_export(registry: ServerRegistry, args: argparse.Namespace) -> int:
    from ..settings import atomic_write

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


def _cmd_discover(registry: ServerRegistry, args: argparse.Namespace) -> int:
    import httpx

    from net import DicomWebError, discover

    if args.password_stdin and not args.username:
        raise UsageError("zhiva-viewer servers discover: error: --password-stdin needs --username")
    password = read_stdin_line("password") if args.password_stdin else None
    auth = (
        httpx.BasicAuth(args.username, password) if args.username and password is not None else None
    )
    base = ServerConfig(name=args.add or "", ca_file=_absolute(args.ca_file))
    if args.username:
        base = msgspec.structs.replace(base, auth_type="basic", username=args.username)
    try:
        result = discover(args.url, base=base, auth=auth)
    except DicomWebError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in result.lines():
        print(line)
    print(f"{result.requests} request(s) in {result.seconds:.1f} s.")
    if result.config is None:
        print("Nothing to propose: no DICOMweb service answered.")
        return EXIT_FAILED
    print("Proposed server (* = set by discovery):")
    for spec in FIELD_FLAGS:
        mark = "*" if spec.name in result.fields else " "
        print(f" {mark} {spec.name}: {getattr(result.config, spec.name)}")
    if args.add:
        config = msgspec.structs.replace(result.config, id=new_server_id(), name=args.add)
        registry.add(config, password=password if config.auth_type == "basic" else None)
        print(
            f"Added {config.name!r} (id {config.id}); check it with `zhiva-viewer servers test {config.name!r}`."
        )
        _secret_notes(registry, config, password, None)
    return EXIT_OK


def _cmd_link(registry: ServerRegistry, args: argparse.Namespace) -> int:
    from net import DicomWebError
    from viewer.signin import ServerChangeNeedsConfirmation, configure_from_link

    # The link carries a one-off token: it is registered with the log redaction and
    # never echoed.
    try:
        result = configure_from_link(
            registry, args.link, ca_file=_absolute(args.ca_file), replace=args.replace
        )
    except ServerChangeNeedsConfirmation as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(
            "Nothing was changed and the link was not used. If you trust this link, run the "
            "same command with --replace.",
            file=sys.stderr,
        )
        return EXIT_FAILED
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
    "discover": _cmd_discover,
}
#: Read-only commands need no fresh copy of the organisation's list from the network.
_FETCHES_ORGANISATION = {
    "list",
    "show",
    "test",
    "select",
    "add",
    "edit",
    "import",
    "link",
    "discover",
}


def run_servers(args: argparse.Namespace, paths: AppPaths) -> int:
    from ..settings import ServerRegistry

    if args.command == "link":
        register_secret_link(args.link)
    registry = ServerRegistry.open(paths, fetch_organisation=args.command in _FETCHES_ORGANISATION)
    for notice in registry.notices:
        note(notice)
    log.info("servers %s", args.command)
    return _COMMANDS[args.command](registry, args)
