"""PyInstaller's entry script: the same `main` as the `zhiva-viewer` console script."""

import sys

from viewer.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
