"""Make the README's screenshots: docs/servers-page.png, docs/study-list.png, docs/viewer.png.

Run:  .venv/bin/python scripts/screenshots.py [servers|studies|viewer ...]

Each opens the app on a throwaway settings directory, on the display in DISPLAY or a
private Xvfb, at UI scale 1. The Servers page shows a few example servers, one with a
mistyped URL to show live validation. The study list and the viewer come from the test
PACS (Orthanc behind nginx TLS, as the integration tests start it) holding the phantom
CT: the search, the opened study with its thumbnails, and a slice of the CT with the
soft-tissue window. Written as 64-colour palette PNGs (the flat UI stays exact, the
files small; the viewer keeps 256 colours for the image's greys).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from viewer.app.main import App

DOCS = REPO / "docs"
SHOTS = ("servers", "studies", "viewer")


def main() -> None:
    wanted = sys.argv[1:] or list(SHOTS)
    unknown = set(wanted) - set(SHOTS)
    if unknown:
        raise SystemExit(f"unknown screenshot(s) {sorted(unknown)}; choose from {SHOTS}")
    xvfb = None
    if not os.environ.get("DISPLAY"):
        from tests.support.xvfb import start_xvfb

        xvfb, os.environ["DISPLAY"] = start_xvfb()
    os.environ["ZHIVA_SECRET_STORE"] = "file"
    os.environ["XDG_CONFIG_DIRS"] = "/nonexistent"
    try:
        with tempfile.TemporaryDirectory(prefix="zhiva-shot-") as tmp:
            os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
            if "servers" in wanted:
                _servers(Path(tmp) / "servers")
            if {"studies", "viewer"} & set(wanted):
                _pacs(Path(tmp) / "pacs", wanted)
    finally:
        from viewer.app import main as app_main

        # One dearpygui context per process (DESIGN.md §6): each shot's App closes,
        # the context goes at the end.
        app_main._destroy_gui()
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


def _app(config_dir: Path) -> App:
    from viewer.app import main as app_main
    from viewer.app.display import check_display

    gui = app_main.ensure_gui(dataclasses.replace(check_display(), scale=1.0), vsync=False)
    app = app_main.App(gui, config_dir=str(config_dir))
    app.start()
    return app


def _until(app: App, condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.frame()
    for _ in range(3):
        app.frame()


def _capture(app: App, out: Path, colours: int = 64) -> None:
    import dearpygui.dearpygui as dpg
    from PIL import Image

    raw = out.with_suffix(".raw.png")
    raw.unlink(missing_ok=True)
    dpg.output_frame_buffer(file=str(raw))
    _until(app, lambda: raw.exists() and raw.stat().st_size, "the frame buffer")
    with Image.open(raw) as image:
        image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(
            out, optimize=True
        )
    raw.unlink()
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


def _servers(tmp: Path) -> None:
    from net import ServerConfig
    from viewer.settings import ServerRegistry, resolve_paths

    config_dir = tmp / "config"
    registry = ServerRegistry.open(resolve_paths(config_dir), fetch_organisation=False)
    hospital = registry.add(
        ServerConfig(
            name="Hospital PACS",
            url="https://pacs.hospital.example/dicom-web",
            auth_type="basic",
            username="jdoe",
            wado_uri_postfix="/wado",
            thumbnail_rendering="https",
        ),
        password="example",
    )
    registry.add(ServerConfig(name="Research archive", url="https://archive.example.org/rs"))
    registry.select(hospital.id)
    app = _app(config_dir)
    _until(app, lambda: app.servers is not None, "the Servers page")
    assert app.servers is not None
    app.state.navigate("settings")
    # What a user sees while typing: the URL lost its "s", the message says why.
    app.servers.set_field("url", "http://pacs.hospital.example/dicom-web")
    _until(app, lambda: True, "the message")
    _capture(app, DOCS / "servers-page.png")
    app.close()


def _pacs(tmp: Path, wanted: list[str]) -> None:
    from net import ServerConfig
    from tests.support.pacs import run_test_pacs
    from tests.support.testdata import ensure_phantom, upload_testdata
    from viewer.settings import ServerRegistry, resolve_paths

    manifest = ensure_phantom()
    with run_test_pacs(tmp) as pacs:
        data = upload_testdata(pacs.orthanc_url, pacs.admin_auth, manifest)
        config = ServerConfig(
            name="Hospital PACS",
            url=pacs.base_url,
            auth_type="basic",
            username="zhiva-admin",
            ca_file=str(pacs.certificates.ca_file),
            wado_uri_postfix="/zhiva/wado",
        )
        config_dir = tmp / "config"
        registry = ServerRegistry.open(resolve_paths(config_dir), fetch_organisation=False)
        registry.add(config, password=pacs.users["zhiva-admin"])
        registry.select(config.id)
        app = _app(config_dir)
        _until(app, lambda: app.studies is not None and app.server_loader, "the server")
        studies = app.studies
        assert studies is not None
        app.state.navigate("studies")
        studies.search()
        _until(app, lambda: studies.status == "ready", "the search")
        studies.open_study(data.study_uid)
        _until(
            app,
            lambda: (
                studies.opened is not None
                and not studies.opened.loading
                and len(studies.opened.thumbnails) >= 3
            ),
            "the series and their thumbnails",
        )
        if "studies" in wanted:
            _capture(app, DOCS / "study-list.png")
        if "viewer" in wanted:
            series_uid = data.series("uncompressed").series_uid
            app.open_series(data.study_uid, series_uid, cursor=150)
            page = app.viewer_page
            _until(
                app,
                lambda: app.viewer.count and page is not None and page.slot == "ready",
                "slice 151",
            )
            _capture(app, DOCS / "viewer.png", colours=256)
        app.close()


if __name__ == "__main__":
    main()
