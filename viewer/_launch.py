"""What a command-line argument names: a configuration link, or a local file or folder.

Both arrive the same way — typed, or handed over by the desktop (a clicked
``zhiva-viewer://`` link, "Open with Zhiva Viewer" on a file) — and are told apart by
their scheme: ``https://`` and ``http://`` (refused later, with the reason) and
``zhiva-viewer:`` are links, as is any other ``scheme://``; ``file://`` URIs (what
some file managers pass) and everything else are paths. Imported by the entry
point's fast path, so it imports nothing beyond what every start imports.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit  # pathlib imports it anyway

__all__ = ["is_link", "local_path"]

_LINK_PREFIXES = ("https://", "http://", "zhiva-viewer:")
_SCHEME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+.-")


def _scheme(arg: str) -> str | None:
    """The scheme of a ``scheme://...`` URL (RFC 3986 3.1), lower case; None for a path
    (a Windows drive letter ``C:\\`` is one letter, never a scheme)."""
    head, separator, _ = arg.partition("://")
    scheme = head.lower()
    if not separator or len(scheme) < 2 or not scheme[0].isalpha():
        return None
    return scheme if set(scheme) <= _SCHEME_CHARACTERS else None


def is_link(arg: str) -> bool:
    """Whether `arg` is a configuration link (or another URL, which is no path)."""
    if arg.lower().startswith(_LINK_PREFIXES):
        return True
    scheme = _scheme(arg)
    return scheme is not None and scheme != "file"


def local_path(arg: str) -> Path:
    """The path `arg` names: itself, or the path of a ``file://`` URI."""
    if arg.lower().startswith("file://"):
        return Path(unquote(urlsplit(arg).path))
    return Path(arg)
