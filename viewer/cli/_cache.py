"""``zhiva-viewer cache info`` and ``cache clear``: what the app keeps on this computer.

The same directory and budgets the app uses (`AppPaths.instance_cache_dir`, under
``--config-dir`` when given; the budgets of Settings > Cache). The memory cache exists
only while the app runs, so ``info`` gives its budget, not what it holds.
"""

from __future__ import annotations

import argparse
import sys

from ..settings._paths import AppPaths
from ._common import EXIT_OK, USAGE, Parser, config_dir_option

__all__ = ["build_cache_parser", "run_cache"]


def build_cache_parser() -> argparse.ArgumentParser:
    """The parser of ``zhiva-viewer [--config-dir DIR] cache info|clear``."""
    parser = Parser(prog="zhiva-viewer", usage=USAGE)
    config_dir_option(parser, top=True)
    areas = parser.add_subparsers(dest="area", required=True, metavar="cache")
    cache = areas.add_parser(
        "cache",
        prog="zhiva-viewer cache",
        help="the image cache",
        description="The images the viewer keeps on this computer (Settings > Cache).",
    )
    config_dir_option(cache, top=False)
    commands = cache.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("info", "where the cache is, its budgets and what it holds"),
        ("clear", "delete every cached image (the app downloads them again when needed)"),
    ):
        sub = commands.add_parser(name, prog=f"zhiva-viewer cache {name}", help=text)
        config_dir_option(sub, top=False)
    return parser


def run_cache(args: argparse.Namespace, paths: AppPaths) -> int:
    from viewer.app.cache_state import format_bytes
    from viewer.loader import InstanceDiskCache
    from viewer.settings import SettingsStore

    cache = SettingsStore(paths.settings_file).load().settings.cache
    disk = InstanceDiskCache(paths.instance_cache_dir, budget=cache.disk_budget)
    if args.command == "clear":
        freed = disk.clear()
        print(f"Cleared {format_bytes(freed)} from {disk.root}.")
        return EXIT_OK
    out = sys.stdout
    print(f"disk cache:   {disk.root}", file=out)
    print(
        f"  holds {format_bytes(disk.nbytes)} in {len(disk)} instances, "
        f"budget {cache.disk_mib} MiB" + (" (off)" if not cache.disk_mib else ""),
        file=out,
    )
    print(
        f"memory cache: budget {cache.memory_mib} MiB (held only while the app runs)",
        file=out,
    )
    return EXIT_OK
