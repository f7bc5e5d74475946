"""Test data: the phantom study (generated once, cached) and pydicom's bundled files.

Nothing here is committed. `ensure_phantom` generates the 300-slice phantom study
(uncompressed, the same series in JPEG 2000 lossless, a multi-frame instance; see
`viewer.phantom`) into ``<repo>/.cache/testdata/`` (or ``$ZHIVA_TEST_CACHE``) under a
directory named after a stamp of everything that shapes the bytes (the generator's
source and version, arguments, pydicom/numpy/openjpeg versions), so a change regenerates
and an unchanged cache is reused. `upload_testdata` stores the phantom and every file
in pydicom's wheel under ``pydicom/data/test_files/`` (globbed directly: pydicom's
``get_testdata_files()`` would try to download more) into a fresh Orthanc over its HTTP
port, and records what Orthanc accepted, with the UIDs Orthanc reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pydicom

from viewer import phantom
from viewer.phantom import SeriesManifest, StudyManifest, StudySize, Variant

__all__ = [
    "PHANTOM_ARGS",
    "TESTDATA_VERSION",
    "RefusedFile",
    "StoredFile",
    "TestData",
    "cache_dir",
    "ensure_phantom",
    "pydicom_test_files",
    "upload_testdata",
]

#: Bump when this module changes what it caches or how.
TESTDATA_VERSION = 1
#: The phantom study of the test suite (DESIGN.md §5 measured this size).
PHANTOM_ARGS: StudySize = {
    "slices": 300,
    "rows": 512,
    "cols": 512,
    "multiframe_frames": 30,
    "multiframe_size": 256,
}

_REPO = Path(__file__).resolve().parents[2]
_UPLOAD_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


def cache_dir() -> Path:
    """Where generated test data is kept between runs: ``$ZHIVA_TEST_CACHE`` or ``.cache/``."""
    override = os.environ.get("ZHIVA_TEST_CACHE")
    return Path(override) if override else _REPO / ".cache" / "testdata"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def _phantom_stamp() -> dict[str, object]:
    # numpy does not promise identical random streams across versions, and an encoder
    # update may change J2K bytes: both are part of the stamp. So is the generator's
    # source, so that an edit without a GENERATOR_VERSION bump cannot serve stale files.
    source = Path(phantom.__file__).read_bytes()
    return {
        "generator_version": phantom.GENERATOR_VERSION,
        "generator_source": hashlib.sha256(source).hexdigest(),
        "testdata_version": TESTDATA_VERSION,
        "args": PHANTOM_ARGS,
        "pydicom": pydicom.__version__,
        "numpy": np.__version__,
        "pylibjpeg-openjpeg": _version("pylibjpeg-openjpeg"),
    }


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """An inter-process lock: two test sessions sharing a cache generate it once."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_phantom(cache: Path | None = None) -> StudyManifest:
    """The cached phantom study, generated first if missing or stale."""
    root = cache or cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    stamp = _phantom_stamp()
    digest = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]
    target = root / f"phantom-{digest}"
    with _exclusive(root / ".lock"):
        manifest = phantom.study_manifest(target, **PHANTOM_ARGS)
        complete = target / "complete.json"
        if complete.is_file() and all(
            path.is_file() for series in manifest.series.values() for path in series.paths
        ):
            return manifest
        # Generate beside the target and rename: an interrupted run never leaves a
        # half-written study that looks complete.
        staging = root / f".staging-{digest}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        phantom.generate_study(staging, **PHANTOM_ARGS)
        (staging / "complete.json").write_text(json.dumps(stamp, indent=2, sort_keys=True))
        # Older versions and crashed runs' leftovers (we hold the lock: none is in use).
        for stale in root.iterdir():
            if stale.name.startswith(("phantom-", ".staging-")) and stale != staging:
                shutil.rmtree(stale, ignore_errors=True)
        staging.rename(target)
    return manifest


def pydicom_test_files() -> list[Path]:
    """Every file bundled under ``pydicom/data/test_files/`` (not only DICOM), sorted."""
    root = Path(pydicom.__file__).parent / "data" / "test_files"
    return sorted(path for path in root.rglob("*") if path.is_file())


@dataclass(frozen=True)
class StoredFile:
    """A pydicom test file Orthanc stored, with the UIDs Orthanc reports for it."""

    path: Path
    name: str  # relative to pydicom's test_files/, e.g. "CT_small.dcm"
    orthanc_id: str
    study_uid: str
    series_uid: str
    sop_uid: str


@dataclass(frozen=True)
class RefusedFile:
    """A pydicom test file Orthanc did not store as a new instance, and why."""

    path: Path
    name: str
    status_code: int  # HTTP status of the upload (200 for AlreadyStored)
    reason: str  # Orthanc's message, or "AlreadyStored" (a SOP Instance UID seen before)


@dataclass(frozen=True)
class TestData:
    """What the test PACS holds: the phantom study and the accepted pydicom files."""

    __test__: ClassVar[bool] = False  # a data class, not a pytest test class

    phantom: StudyManifest
    pydicom_files: tuple[StoredFile, ...]
    pydicom_refused: tuple[RefusedFile, ...]

    @property
    def study_uid(self) -> str:
        """The phantom study's Study Instance UID."""
        return self.phantom.study_uid

    def series(self, variant: Variant) -> SeriesManifest:
        """One phantom series: ``"uncompressed"``, ``"j2k"`` or ``"multiframe"``."""
        return self.phantom.series[variant]

    @property
    def uncompressed_paths(self) -> tuple[Path, ...]:
        """The uncompressed phantom series' files, in slice order."""
        return self.phantom.series["uncompressed"].paths


def _orthanc_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        return str(body.get("Details") or body.get("Message") or body)
    return str(body)[:200]


def _upload_phantom(client: httpx.Client, manifest: StudyManifest) -> None:
    # One request per file over a kept-alive connection: 601 files (~180 MB) took ~2.2 s
    # here, a single ZIP upload of the same files ~3.8 s (plus ~0.3 s to build it).
    for series in manifest.series.values():
        for path in series.paths:
            response = client.post("/instances", content=path.read_bytes())
            if response.status_code != 200 or response.json().get("Status") != "Success":
                raise RuntimeError(
                    f"Orthanc did not store the phantom file {path}: {response.status_code}"
                    f" {_orthanc_message(response)}"
                )


def _upload_pydicom_files(
    client: httpx.Client,
) -> tuple[tuple[StoredFile, ...], tuple[RefusedFile, ...]]:
    root = Path(pydicom.__file__).parent / "data" / "test_files"
    stored: list[StoredFile] = []
    refused: list[RefusedFile] = []
    parent_uids: dict[str, str] = {}  # Orthanc series/study id -> its UID

    def uid_of(level: str, orthanc_id: str, tag: str) -> str:
        if orthanc_id not in parent_uids:
            response = client.get(f"/{level}/{orthanc_id}")
            response.raise_for_status()
            parent_uids[orthanc_id] = response.json()["MainDicomTags"][tag]
        return parent_uids[orthanc_id]

    for path in pydicom_test_files():
        name = path.relative_to(root).as_posix()
        response = client.post("/instances", content=path.read_bytes())
        status = response.json().get("Status") if response.status_code == 200 else None
        if status != "Success":
            # AlreadyStored: another file of the set has the same SOP Instance UID.
            reason = status or _orthanc_message(response)
            refused.append(RefusedFile(path, name, response.status_code, reason))
            continue
        answer = response.json()
        instance = client.get(f"/instances/{answer['ID']}")
        instance.raise_for_status()
        stored.append(
            StoredFile(
                path=path,
                name=name,
                orthanc_id=answer["ID"],
                study_uid=uid_of("studies", answer["ParentStudy"], "StudyInstanceUID"),
                series_uid=uid_of("series", answer["ParentSeries"], "SeriesInstanceUID"),
                sop_uid=instance.json()["MainDicomTags"]["SOPInstanceUID"],
            )
        )
    return tuple(stored), tuple(refused)


def upload_testdata(orthanc_url: str, auth: tuple[str, str], manifest: StudyManifest) -> TestData:
    """Store the phantom study and pydicom's test files in an (empty) Orthanc."""
    with httpx.Client(base_url=orthanc_url, auth=auth, timeout=_UPLOAD_TIMEOUT) as client:
        _upload_phantom(client, manifest)
        stored, refused = _upload_pydicom_files(client)
    return TestData(phantom=manifest, pydicom_files=stored, pydicom_refused=refused)
