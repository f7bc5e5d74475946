"""A private Xvfb for GUI tests, benchmarks and screenshot scripts.

`-displayfd`: Xvfb picks a free display number and writes it once it accepts
connections, so there is neither a guessed number nor a readiness poll. `-noreset`
keeps the server up when its last client disconnects (the display check in
`viewer.app.display` is such a client).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys

__all__ = ["SCREEN", "XvfbError", "start_xvfb"]

SCREEN = "1280x800x24"


class XvfbError(RuntimeError):
    """Xvfb is missing or did not start."""


def _die_with_parent() -> None:
    # If the parent dies (a crash in C, SIGKILL), the kernel stops Xvfb too (Linux only).
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_xvfb(screen: str = SCREEN) -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a free display; returns the process and ``":N"``."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise XvfbError(
            "Xvfb is not installed (Debian package xvfb; scripts/bootstrap.sh installs it)"
        )
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        preexec_fn=_die_with_parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        number = pipe.readline().strip().decode()
    if not number:
        process.kill()
        raise XvfbError("Xvfb did not start")
    return process, f":{number}"
