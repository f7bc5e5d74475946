"""What a command-line argument names: a configuration link, or a local file or folder.

Both arrive the same way — typed, or handed over by the desktop (a clicked
``zhiva-viewer://`` link, "Open with Zhiva Viewer" on a file) — and are told apart by
their scheme: ``https://`` and ``http://`` (refused later, with the reason) and
``zhiva-viewer:`` are links; ``file://`` URIs (what some file managers pass) and
everything else are paths. Imported by the entry point's fast path, so it imports
nothing heavy.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["is_link", "local_path"]

_LINK = re.compile(r"^(?:https?://|zhiva-viewer:)", re.IGNORECASE)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_link(arg: str) -> bool:
    """Whether `arg` is a configuration link (or another URL, which is no path)."""
    return bool(_LINK.match(arg)) or (
        bool(_URI.match(arg)) and not arg.lower().startswith("file://")
    )


def local_path(arg: str) -> Path:
    """The path `arg` names: itself, or the path of a ``file://`` URI."""
    if arg.lower().startswith("file://"):
        return Path(unquote(urlsplit(arg).path))
    return Path(arg)
