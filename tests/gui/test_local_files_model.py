"""Local files and "Store on server" with no display: dialog answers, store batches, state.

The store tests inject faults with a small `Storer` (a server refusing one instance,
failing mid-upload, answering nothing); the real STOW round trip against Orthanc is in
test_local_files_gui.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from net import ServerError, StoreFailure, StoreResult, StudySummary
from viewer.app.files import chosen_paths, save_path
from viewer.app.state import AppState
from viewer.app.store import StoreReport, store_files
from viewer.app.studies_state import StudiesState
from viewer.app.ui_thread import BackgroundTasks, CancelToken, UiQueue

# -- what the file dialogs hand back -------------------------------------------------


def test_open_dialogs_answer_paths(tmp_path: Path) -> None:
    # Shapes as dearpygui 2.3 gives them (hoffstadt/DearPyGui#1491 for several files).
    two = {
        "file_path_name": f"{tmp_path}/2 files Selected.*",
        "file_name": "2 files Selected.*",
        "current_path": str(tmp_path),
        "current_filter": ".*",
        "selections": {"b.dcm": f"{tmp_path}/b.dcm", "a.dcm": f"{tmp_path}/a.dcm"},
    }
    assert chosen_paths(two, folder=False) == [tmp_path / "a.dcm", tmp_path / "b.dcm"]
    one = {"file_path_name": f"{tmp_path}/IM0001", "selections": {}}
    assert chosen_paths(one, folder=False) == [tmp_path / "IM0001"]
    # "any file" with nothing picked names the filter, not a file.
    assert chosen_paths({"file_path_name": f"{tmp_path}/.*", "selections": {}}, folder=False) == []
    folder = {"file_path_name": str(tmp_path / "CT"), "current_path": str(tmp_path)}
    assert chosen_paths(folder, folder=True) == [tmp_path / "CT"]
    assert chosen_paths({}, folder=True) == []


def test_the_save_dialog_always_writes_a_png(tmp_path: Path) -> None:
    assert save_path({"file_path_name": f"{tmp_path}/slice.png"}) == tmp_path / "slice.png"
    assert save_path({"file_path_name": f"{tmp_path}/slice"}) == tmp_path / "slice.png"
    assert save_path({"file_path_name": f"{tmp_path}/slice.PNG"}) == tmp_path / "slice.PNG"
    assert save_path({"file_path_name": f"{tmp_path}/a.b.*"}) == tmp_path / "a.b.png"
    assert save_path({"file_path_name": f"{tmp_path}/.png"}) is None  # no name typed
    assert save_path({}) is None


# -- storing ------------------------------------------------------------------------


def _files(folder: Path, count: int, size: int = 1000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"{n:03d}.dcm"
        path.write_bytes(bytes([n]) * size)
        paths.append(path)
    return paths


class Server:
    """Answers like a STOW-RS server: stores everything unless told otherwise."""

    server = "Fake PACS"

    def __init__(
        self,
        *,
        refuse: bytes | None = None,
        fail_on_request: int | None = None,
        silent: bool = False,
    ) -> None:
        self.refuse = refuse
        self.fail_on_request = fail_on_request
        self.silent = silent
        self.requests: list[list[bytes]] = []

    def store(
        self, instances: Sequence[Dataset | bytes], study_uid: str | None = None
    ) -> StoreResult:
        assert study_uid == "1.2.3"
        bodies = [bytes(b) for b in instances]
        self.requests.append(bodies)
        if self.fail_on_request == len(self.requests):
            raise ServerError("503 Service Unavailable: try again later.", server=self.server)
        if self.silent:
            return StoreResult()
        stored = tuple(f"uid-{b[0]}" for b in bodies if b[:1] != self.refuse)
        failed = tuple(
            StoreFailure(sop_instance_uid=f"uid-{b[0]}", reason=0xA900)
            for b in bodies
            if b[:1] == self.refuse
        )
        return StoreResult(stored=stored, failed=failed)


def test_files_go_in_batches_as_they_are_on_disk(tmp_path: Path) -> None:
    paths = _files(tmp_path, 10)
    server = Server()
    progress: list[tuple[int, int]] = []
    report = store_files(
        server, paths, "1.2.3", batch_bytes=3000, progress=lambda d, t: progress.append((d, t))
    )
    assert [len(r) for r in server.requests] == [3, 3, 3, 1]
    assert [b for r in server.requests for b in r] == [p.read_bytes() for p in paths]
    assert progress == [(3, 10), (6, 10), (9, 10), (10, 10)]
    assert (report.total, report.stored, report.failed, report.unsent) == (10, 10, (), 0)
    assert report.summary() == ("success", "Stored 10 of 10 instances on Fake PACS.")


def test_a_refused_instance_and_an_unreadable_file_are_reported(tmp_path: Path) -> None:
    paths = _files(tmp_path, 4)
    missing = tmp_path / "gone.dcm"
    report = store_files(Server(refuse=b"\x02"), [*paths, missing], "1.2.3")
    assert report.stored == 3
    assert dict(report.failed) == {
        "uid-2": "the data set does not match its SOP class",
        "gone.dcm": "it could not be read (No such file or directory)",
    }
    level, text = report.summary()
    assert level == "error" and "3 of 5" in text and "and 1 more" in text


def test_a_server_failure_stops_the_upload_and_says_how_far_it_got(tmp_path: Path) -> None:
    paths = _files(tmp_path, 6)
    server = Server(fail_on_request=2)
    report = store_files(server, paths, "1.2.3", batch_bytes=2000)
    assert len(server.requests) == 2  # nothing sent after the failure
    assert report.stored == 2 and report.unsent == 4
    level, text = report.summary()
    assert level == "error"
    assert "stopped after 2 of 6" in text and "503 Service Unavailable" in text


def test_a_server_that_confirms_nothing_is_not_reported_as_success(tmp_path: Path) -> None:
    report = store_files(Server(silent=True), _files(tmp_path, 3), "1.2.3")
    assert (report.stored, report.unconfirmed) == (0, 3)
    level, text = report.summary()
    assert level == "warning" and "answered nothing about 3" in text


def test_cancel_stops_between_batches(tmp_path: Path) -> None:
    paths = _files(tmp_path, 6)
    token = CancelToken()
    server = Server()
    report = store_files(
        server, paths, "1.2.3", batch_bytes=2000, cancel=token,
        progress=lambda done, total: token.cancel(),
    )  # fmt: skip
    assert len(server.requests) == 1 and report.cancelled and report.stored == 2
    assert report.summary()[0] == "warning"


def test_stored_files_are_part10_bytes_unchanged(tmp_path: Path) -> None:
    # The report's numbers come from the server; the bytes are the user's file.
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.StudyInstanceUID = "1.2.3"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    server = Server()
    store_files(server, [path], "1.2.3")
    assert server.requests == [[path.read_bytes()]]


def test_report_counts() -> None:
    report = StoreReport("S", total=5, stored=2, failed=(("a", "b"),), unconfirmed=1)
    assert report.unsent == 1


# -- the DICOMs page's state -----------------------------------------------------------


@pytest.fixture
def studies() -> Iterator[StudiesState]:
    tasks = BackgroundTasks(UiQueue())
    yield StudiesState(AppState(), tasks)
    tasks.shutdown()


def test_store_is_offered_only_for_an_opened_local_study_with_a_target(
    studies: StudiesState,
) -> None:
    asked: list[str] = []
    studies.on_store = asked.append
    study = StudySummary(study_uid="1.2.3", patient_name="A")
    studies.set_source("PACS", lambda q, limit, o, f: [study], lambda uid: None)
    studies.rows = [study]
    studies.open_study("1.2.3")
    studies.set_store_target("PACS")
    studies.store_opened()
    assert asked == []  # a server's own study is not "local"
    studies.set_source("folder", lambda q, limit, o, f: [study], lambda uid: None, local=True)
    studies.rows = [study]
    studies.store_opened()
    assert asked == []  # no study open
    studies.open_study("1.2.3")
    studies.set_store_target(None)
    studies.store_opened()
    assert asked == []  # no server that can store
    studies.set_store_target("PACS")
    studies.store_opened()
    assert asked == ["1.2.3"]
    studies.set_store_status("Storing…", storing=True)
    studies.store_opened()  # not twice at once
    assert asked == ["1.2.3"]


def test_an_empty_local_folder_says_why(studies: StudiesState) -> None:
    studies.set_source(
        "/data/empty", lambda q, limit, o, f: [], lambda uid: None, local=True,
        describe_empty=lambda: "No DICOM files were found in /data/empty (3 other files skipped).",
    )  # fmt: skip
    studies.search()
    assert studies.tasks.wait_until_idle(10)
    assert studies.status == "empty" and "3 other files skipped" in studies.message
