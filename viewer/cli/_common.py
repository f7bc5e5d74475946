"""What every ``zhiva-viewer`` command shares: exit codes, the parser class that returns
instead of exiting, and the small output helpers."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, TextIO

from ..settings._logging import register_secret
from ..settings._paths import ENV_CONFIG_DIR

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "USAGE",
    "Parser",
    "UsageError",
    "config_dir_option",
    "note",
    "read_stdin_line",
    "register_secret_link",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

USAGE = """\
zhiva-viewer [--config-dir DIR] [--demo] [LINK | PATH...]
       zhiva-viewer --version | --self-check | --smoke PNG
       zhiva-viewer [--config-dir DIR] servers COMMAND [ARGS]
       zhiva-viewer [--config-dir DIR] cache info|clear"""


class Parser(argparse.ArgumentParser):
    """argparse, but `error` raises instead of exiting, so `main` returns the code."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: error: {message}")


class UsageError(Exception):
    pass


def config_dir_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument(
        "--config-dir",
        metavar="DIR",
        # Sub-commands accept it too; SUPPRESS keeps their absence from erasing the
        # value given before the command.
        default=None if top else argparse.SUPPRESS,
        help=f"keep settings, secrets file, logs and cache in DIR (env: {ENV_CONFIG_DIR})",
    )


def note(text: str, stream: TextIO | None = None) -> None:
    print(f"note: {text}", file=stream or sys.stderr)


def read_stdin_line(what: str) -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageError(f"zhiva-viewer: error: no {what} on standard input")
    register_secret(line)
    return line


def register_secret_link(link: str) -> None:
    """Keep the token of a configuration link out of the logs."""
    from urllib.parse import parse_qs, urlsplit

    try:
        query = parse_qs(urlsplit(link).query)
    except ValueError:
        return
    for value in query.get("token", []):
        register_secret(value)
