"""A local folder's scan held at a gate, and a series laid out for it to find late.

`hold_scan` makes the scan thread of `LocalFolderSource` stop before reading its
`after + 1`-th file, until the test opens the gate: what the app or the loader does
with a half-scanned folder is then decided by the test, not by timing.
`copy_stack_end_first` copies a series so that the scan (in file name order) meets the
end of its stack first: a layout of the files found so far holds the end of the stack,
and a slice's index changes when the rest is found.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from viewer.loader import _local
from viewer.loader._members import Member

__all__ = ["HeldScan", "copy_stack_end_first", "hold_scan"]

WAIT = 30.0


@dataclass
class HeldScan:
    after: int
    gate: threading.Event = field(default_factory=threading.Event)
    #: The scan is waiting at the gate.
    held: threading.Event = field(default_factory=threading.Event)
    read: list[Member] = field(default_factory=list)

    def release(self) -> None:
        self.gate.set()


def hold_scan(monkeypatch: pytest.MonkeyPatch, after: int) -> HeldScan:
    """Hold every scan of this test after `after` files (read headers), until released."""
    hold = HeldScan(after)
    read = _local.read_index_header

    def gated(member: Member, stream: object = None) -> object:
        hold.read.append(member)
        if len(hold.read) == after + 1:
            hold.held.set()
            hold.gate.wait(WAIT)
        return read(member, stream)  # type: ignore[arg-type]

    monkeypatch.setattr(_local, "read_index_header", gated)
    return hold


def copy_stack_end_first(paths: list[Path], folder: Path) -> None:
    """Copy the series `paths` into `folder`, named so that the scan (file name order)
    meets first the slices its stack shows last: slice i of a layout of the files found
    so far is then another slice of the whole series."""
    import pydicom

    from viewer.loader._layout import build_layout

    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]
    first = headers[0]
    layout = build_layout(first.StudyInstanceUID, first.SeriesInstanceUID, headers)
    rank = {ref.sop_uid: n for n, ref in enumerate(layout.slices)}
    folder.mkdir(parents=True)
    for path, header in zip(paths, headers, strict=True):
        name = len(paths) - 1 - rank[str(header.SOPInstanceUID)]
        shutil.copyfile(path, folder / f"{name:04d}.dcm")
