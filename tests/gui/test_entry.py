"""The entry point's fast path: a plain launch skips the full command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from viewer.__main__ import plain_launch


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (None, False)),
        (["--demo"], (None, True)),
        (["--config-dir", "/x"], ("/x", False)),
        (["--config-dir=/x", "--demo"], ("/x", True)),
        (["servers", "list"], None),
        (["--version"], None),
        (["--help"], None),
        (["https://h/auth/oauth?token=a.b.c"], None),  # links need the token checks
        (["--config-dir"], None),  # missing value: the full parser reports it
        (["--config-dir="], None),
        (["--demo", "--demo"], None),
    ],
)
def test_plain_launch(args: list[str], expected: tuple[str | None, bool] | None) -> None:
    assert plain_launch(args) == expected


def test_plain_launch_does_not_import_the_command_line_or_the_network_layer() -> None:
    code = (
        "import sys, viewer.__main__ as m, viewer.app.main, viewer.settings._logging;"
        "print(sorted(n for n in ('viewer.cli', 'net._client', 'pydicom', 'httpx', 'argparse')"
        " if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
