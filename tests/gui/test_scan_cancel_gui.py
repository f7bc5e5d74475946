"""A large folder's scan through the real window: progress line, studies as they are
found, and the Cancel button.

The scan is held after its third file (a gate in the header reader, the scan's own
thread waits on it), so what the window shows mid-scan is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import pytest

from tests.gui.driver import Driver
from tests.loader.test_local_media import make_instance, write
from tests.support.held_scan import hold_scan

MakeApp = Callable[..., Driver]


def test_the_scan_lists_studies_as_found_and_cancel_stops_it(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.uid import generate_uid

    for n in range(40):
        ds = make_instance(generate_uid(), generate_uid(), patient=f"P{n:02d}")
        write(ds, tmp_path / "big" / f"{n:02d}.dcm")
    scan = hold_scan(monkeypatch, after=3)
    ui = make_app(paths=[tmp_path / "big"])
    app = ui.app
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: scan.held.is_set() and len(studies.rows) == 3, what="the first studies")
    assert studies.scanning and dpg.is_item_shown("studies/scan/cancel")
    assert dpg.get_value("studies/scan").endswith("(scanning)")
    ui.click("studies/scan/cancel")
    scan.release()
    ui.frames_until(lambda: not studies.scanning, what="the scan to stop")
    ui.frames(3)
    line = dpg.get_value("studies/scan")
    assert line.endswith("(cancelled)") and line.startswith(f"{len(studies.rows)} files scanned")
    assert not dpg.is_item_shown("studies/scan/cancel")
    assert 3 <= len(studies.rows) < 40 and app.state.page == "studies"
