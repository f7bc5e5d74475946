"""Entry point of Zhiva Viewer (`zhiva-viewer`, `python -m viewer`): see `viewer.cli`.

A plain launch (`zhiva-viewer [--config-dir DIR] [--demo] [PATH...]`) goes straight to
the window without building the whole command line: argparse, the server registry
and the network layer cost ~40 ms before the first frame, which users see on every
start (bench/startup.py), and double-clicking a file is a start too. Everything else
— links, commands, a path that does not exist (the full parser says so) — goes
through `viewer.cli`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ._launch import is_link, local_path

__all__ = ["main", "plain_launch"]


def plain_launch(args: Sequence[str]) -> tuple[str | None, bool, tuple[str, ...]] | None:
    """``(config_dir, demo, paths)`` when `args` only opens the window (on local files,
    when paths are given, each of which exists), else None."""
    config_dir: str | None = None
    demo = False
    paths: list[str] = []
    rest = list(args)
    only_paths = False
    while rest:
        arg = rest.pop(0)
        if only_paths or not arg.startswith("-"):
            if not paths and not only_paths and arg == "servers":
                return None  # the command
            if is_link(arg) or not os.path.exists(local_path(arg)):
                return None  # a link, or the full parser's error message
            paths.append(arg)
        elif arg == "--":
            only_paths = True
        elif arg == "--demo" and not demo:
            demo = True
        elif arg == "--config-dir" and rest and config_dir is None:
            config_dir = rest.pop(0)
        elif arg.startswith("--config-dir=") and config_dir is None:
            config_dir = arg.split("=", 1)[1]
        else:
            return None  # anything else is the full command line's business
    if config_dir == "":
        return None  # let the full parser report it
    return config_dir, demo, tuple(paths)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    launch = plain_launch(args)
    if launch is None:
        from .cli import main as cli_main

        return cli_main(args)
    config_dir, demo, targets = launch
    from .app.main import run
    from .settings._logging import setup_logging, shutdown_logging
    from .settings._paths import resolve_paths

    paths = resolve_paths(config_dir)
    try:
        setup_logging(paths.log_dir)
    except OSError as exc:
        print(f"note: logging to {paths.log_dir} is off: {exc}", file=sys.stderr)
    try:
        return run(config_dir=config_dir, demo=demo, paths=[local_path(t) for t in targets])
    except KeyboardInterrupt:
        return 130
    finally:
        shutdown_logging()


if __name__ == "__main__":
    sys.exit(main())
