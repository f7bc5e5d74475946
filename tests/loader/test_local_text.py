"""Local files list multi-valued text as DICOM writes it (``PR\\US``), never a list repr."""

from __future__ import annotations

from pathlib import Path

from tests.support.broken_headers import multi_valued_instance
from viewer.loader import LocalFolderSource


def test_multi_valued_text_of_local_files_is_backslash_joined(tmp_path: Path) -> None:
    ds = multi_valued_instance()
    ds.save_as(tmp_path / "multi.dcm", enforce_file_format=True)
    source = LocalFolderSource(tmp_path)
    (study,) = source.search_studies()
    assert study.accession_number == "PR\\US"
    assert study.patient_name == "Doe, John\\Roe, Ann"
    assert study.patient_id == "ID-1\\ID-2"
    assert study.description == "HEAD\\NECK"
    (series,) = source.search_series(study.study_uid)
    assert series.description == "T1\\AX"
