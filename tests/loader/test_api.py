"""The loader's public surface changes only on purpose, and it never imports a GUI."""

from __future__ import annotations

import subprocess
import sys

import viewer.loader

PUBLIC = {
    "DEFAULT_DISK_BUDGET",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_PREFETCH_RADIUS",
    "LOADER_RETRY",
    "CacheInfo",
    "CacheUsage",
    "CachedFrame",
    "FirstImage",
    "FrameCache",
    "FrameFailed",
    "FrameKey",
    "FrameReady",
    "HandleEvent",
    "InstanceDiskCache",
    "InstanceHeader",
    "LoaderError",
    "LoaderEvent",
    "LoaderHub",
    "LocalFolderSource",
    "RenderingSource",
    "SeriesFailed",
    "SeriesHandle",
    "SeriesKey",
    "SeriesLayout",
    "ScanProgress",
    "SeriesLoader",
    "SeriesOpened",
    "SeriesProgress",
    "SliceRef",
    "SliceState",
    "StudyEvent",
    "StudyFailed",
    "StudyOpened",
    "ThumbnailFailed",
    "ThumbnailReady",
    "TraceEntry",
    "WorkerPool",
    "build_layout",
    "default_cache_dir",
    "default_workers",
    "fit_within",
    "to_rgba",
}


def test_public_surface() -> None:
    assert set(viewer.loader.__all__) == PUBLIC
    assert all(hasattr(viewer.loader, name) for name in PUBLIC)


def test_no_gui_import() -> None:
    # Workers must never touch the GUI; the simplest guarantee is not importing it.
    code = "import sys, viewer.loader; print('dearpygui' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
