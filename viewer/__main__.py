"""Command-line entry point of Zhiva Viewer (`zhiva-viewer`, `python -m viewer`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("--version", "-V"):
        from importlib.metadata import version

        print(f"zhiva-viewer {version('zhiva-viewer')}")
        return 0
    print(
        "Zhiva Viewer: the desktop GUI is not built yet (see the open issues). "
        "The DICOMweb client is usable from Python: `from net import DicomWebClient`.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
