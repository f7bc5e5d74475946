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
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# Only what every run needs is imported here: the window's first frame must not wait
# for the server registry, pydicom or httpx (bench/startup.py measures it).
from ..settings._errors import InvalidServer, SettingsError
from ..settings._logging import setup_logging, shutdown_logging
from ..settings._paths import ENV_CONFIG_DIR, ENV_SERVERS_FILE, ENV_SERVERS_URL, resolve_paths
from ..settings._paths import AppPaths as _AppPaths
from ..settings._secrets import ENV_SECRET_STORE
from ._cache import build_cache_parser
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    USAGE,
    Parser,
    UsageError,
    config_dir_option,
    note,
    register_secret_link,
)
from ._selfcheck import SELF_CHECK_SYNTAXES
from ._servers import FIELD_FLAGS, build_servers_parser
from ._smoke import SMOKE_SLICE

if TYPE_CHECKING:
    from ..app.main import App

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FIELD_FLAGS",
    "SELF_CHECK_SYNTAXES",
    "SMOKE_SLICE",
    "build_cache_parser",
    "build_parser",
    "build_servers_parser",
    "main",
]

log = logging.getLogger("viewer.cli")

_DESCRIPTION = """\
Zhiva Viewer: a desktop DICOM viewer for DICOMweb servers (PACS).

Without a command it opens the app. LINK is a configuration link from your
administrator (https://<host>/auth/oauth?token=... or zhiva-viewer://oauth?token=...).
PATH... are DICOM files, folders, DICOMDIRs or zip archives to open, as File > Open
does; with one study the app goes to it (and to the viewer when it has one series)."""

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
  servers link LINK [--ca-file F] [--replace]
                                   set a server up from a configuration link
  servers discover URL [--add N]   look at a host and propose its paths and options

cache commands (the images kept on this computer, as in Settings > Cache):
  cache info                       where the cache is, its budgets, what it holds
  cache clear                      delete every cached image

NAME is a server's name or its id. Settings live in the platform's user config
directory unless --config-dir or {ENV_CONFIG_DIR} names another (portable installs,
tests). Organisation servers: /etc/xdg/zhiva-viewer/servers.json (and the other
$XDG_CONFIG_DIRS), the file in {ENV_SERVERS_FILE}, or the https URL in {ENV_SERVERS_URL}.
{ENV_SECRET_STORE}=file keeps passwords in a 0600 file instead of the OS keyring.

exit codes: 0 success, 1 a check or operation failed, 2 bad usage or no display."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the app itself (the form without ``servers``)."""
    parser = Parser(
        prog="zhiva-viewer",
        usage=USAGE,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_dir_option(parser, top=True)
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
    parser.add_argument(
        "targets", nargs="*", metavar="LINK | PATH",
        help="a configuration link, or local DICOM files, folders, DICOMDIRs or zip archives",
    )  # fmt: skip
    return parser


def _split_targets(targets: Sequence[str]) -> tuple[str | None, list[Path]]:
    """The link, or the paths, among the positional arguments (never both)."""
    from .._launch import is_link, local_path

    links = [t for t in targets if is_link(t)]
    if links and len(targets) > 1:
        raise UsageError(
            "zhiva-viewer: error: give one configuration link, or files and folders, not both"
        )
    if links:
        return links[0], []
    paths = [local_path(t) for t in targets]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"zhiva-viewer: error: {missing[0]}: no such file or folder")
    return None, paths


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
        from ._selfcheck import self_check

        return self_check(paths)
    if args.smoke:
        from ._smoke import smoke

        return smoke(Path(args.smoke), config_dir=args.config_dir)
    if args.first_frame_probe:
        from ..app.main import run

        def first_frame(app: App) -> bool:
            print(f"first-frame {time.monotonic():.6f}", flush=True)
            return False

        return run(config_dir=args.config_dir, on_frame=first_frame)
    return _run_gui(args, paths)


def _run_gui(args: argparse.Namespace, paths: _AppPaths) -> int:
    """The desktop window (viewer.app); exit 2 with a message when there is no display."""
    from ..app.main import run

    link, local = _split_targets(args.targets)
    if link:
        # The link carries a one-off token: keep it out of the logs from here on.
        register_secret_link(link)
        # A malformed or expired link is refused here, before a window opens for it;
        # the window does the rest (exchange, sign-in) and shows its progress.
        from net import (
            DicomWebError,
            configuration_link_origin,
            decode_token,
            parse_configuration_link,
        )

        try:
            token = parse_configuration_link(link)
            decode_token(token, link_origin=configuration_link_origin(link))
        except DicomWebError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
    log.info("opening the window (settings in %s)", paths.config_dir)
    return run(config_dir=args.config_dir, link=link, demo=args.demo, paths=local)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    area = _first_positional(args_list)
    servers_mode = area == "servers"
    cache_mode = area == "cache"
    if servers_mode:
        parser = build_servers_parser()
    elif cache_mode:
        parser = build_cache_parser()
    else:
        parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help, or argparse's own exits
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    paths = resolve_paths(args.config_dir)
    log_file: Path | None = None
    try:
        log_file = setup_logging(paths.log_dir)
    except OSError as exc:
        note(f"logging to {paths.log_dir} is off: {exc}")
    try:
        if servers_mode:
            from ._servers import run_servers

            return run_servers(args, paths)
        if cache_mode:
            from ._cache import run_cache

            return run_cache(args, paths)
        return _run_app(args, paths)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except InvalidServer as exc:
        from ._servers import print_invalid

        print_invalid(exc)
        return EXIT_FAILED
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        # Whatever the cause, the user gets a line, not a traceback; the log keeps it.
        log.critical("out of memory", exc_info=True)
        print(f"error: out of memory.{_details_in(log_file)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        from net import DicomWebError

        if isinstance(exc, DicomWebError):
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
            return EXIT_FAILED
        log.exception("unexpected error")  # a bug of ours: visible in the log
        what = _one_line(f"{type(exc).__name__}: {exc}")
        print(
            f"error: unexpected error ({what}); please report it.{_details_in(log_file)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        shutdown_logging()


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _details_in(log_file: Path | None) -> str:
    return f" Details are in {log_file}." if log_file is not None else ""
