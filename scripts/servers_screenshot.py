"""Make docs/servers-page.png: the Settings > Servers page, as the README shows it.

Run:  .venv/bin/python scripts/servers_screenshot.py [OUT.png]

Opens the app on a throwaway settings directory (a few example servers, one with a
mistyped URL to show live validation), on the display in DISPLAY or a private Xvfb,
captures the window and writes a small palette PNG.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "servers-page.png")
    xvfb = None
    if not os.environ.get("DISPLAY"):
        from tests.support.xvfb import start_xvfb

        xvfb, os.environ["DISPLAY"] = start_xvfb()
    os.environ["ZHIVA_SECRET_STORE"] = "file"
    os.environ["XDG_CONFIG_DIRS"] = "/nonexistent"
    try:
        with tempfile.TemporaryDirectory(prefix="zhiva-shot-") as tmp:
            _shoot(Path(tmp), out)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


def _shoot(tmp: Path, out: Path) -> None:
    from PIL import Image

    from net import ServerConfig
    from viewer.app import main as app_main
    from viewer.app.display import check_display
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
    gui = app_main.ensure_gui(dataclasses.replace(check_display(), scale=1.0), vsync=False)
    app = app_main.App(gui, config_dir=str(config_dir))
    app.start()
    while app.servers is None:
        app.frame()
    app.state.navigate("settings")
    # What a user sees while typing: the URL lost its "s", the message says why.
    app.servers.set_field("url", "http://pacs.hospital.example/dicom-web")
    for _ in range(4):
        app.frame()
    raw = tmp / "raw.png"
    import dearpygui.dearpygui as dpg

    dpg.output_frame_buffer(file=str(raw))
    while not (raw.exists() and raw.stat().st_size):
        app.frame()
    app.close()
    app_main._destroy_gui()
    with Image.open(raw) as image:
        # A palette of 64 colours keeps the flat UI exact and the file small.
        image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(
            out, optimize=True
        )


if __name__ == "__main__":
    main()
