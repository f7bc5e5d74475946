"""Entry point of Zhiva Viewer (`zhiva-viewer`, `python -m viewer`): see `viewer.cli`."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
