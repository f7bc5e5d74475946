"""`LocalFolderSource`: a folder of DICOM files answers like a DICOMweb server."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

from net import NotFound, StudyQuery, StudySource
from viewer import phantom
from viewer.loader import LocalFolderSource


def test_is_a_study_source_and_finds_the_phantom(
    local: LocalFolderSource, small_study: phantom.StudyManifest
) -> None:
    assert isinstance(local, StudySource)
    studies = local.search_studies()
    assert [s.study_uid for s in studies] == [small_study.study_uid]
    study = studies[0]
    assert study.patient_id == small_study.patient_id
    assert study.modalities == ("CT",)
    assert study.series_count == len(small_study.series)
    series = local.search_series(small_study.study_uid)
    assert [s.series_uid for s in series] == [
        small_study.series[v].series_uid
        for v in sorted(small_study.series, key=lambda v: small_study.series[v].series_number)
    ]
    unc = small_study.series["uncompressed"]
    assert series[0].instance_count == len(unc.sop_uids)
    assert series[0].description == unc.description


def test_search_matches_like_the_dicomweb_client(
    local: LocalFolderSource, small_study: phantom.StudyManifest
) -> None:
    uid = small_study.study_uid
    assert [s.study_uid for s in local.search_studies(StudyQuery(patient_name="phant"))] == [uid]
    assert [
        s.study_uid for s in local.search_studies(StudyQuery(patient_name="zhiva phantom"))
    ] == [uid]
    assert [s.study_uid for s in local.search_studies(StudyQuery(patient_name="P*m*"))] == [uid]
    assert local.search_studies(StudyQuery(patient_name="Doe")) == []
    assert local.search_studies(StudyQuery(modality="MR")) == []
    study = local.search_studies()[0]
    assert study.study_date is not None
    day = StudyQuery(study_date_from=study.study_date, study_date_to=study.study_date)
    assert [s.study_uid for s in local.search_studies(day)] == [uid]
    assert local.search_studies(limit=0) == []


def test_instances_metadata_and_retrieval(
    local: LocalFolderSource, small_study: phantom.StudyManifest
) -> None:
    unc = small_study.series["uncompressed"]
    instances = local.search_instances(small_study.study_uid, unc.series_uid)
    assert [i.sop_instance_uid for i in instances] == list(unc.sop_uids)  # instance order
    headers = local.series_metadata(small_study.study_uid, unc.series_uid)
    assert [str(h.SOPInstanceUID) for h in headers] == list(unc.sop_uids)
    assert all(h.PixelData == b"" for h in headers)  # like WADO-RS metadata: no bulk data
    assert len(local.study_metadata(small_study.study_uid)) == sum(
        len(s.sop_uids) for s in small_study.series.values()
    )
    streamed = list(local.iter_series(small_study.study_uid, unc.series_uid))
    assert [str(d.SOPInstanceUID) for d in streamed] == list(unc.sop_uids)
    one = local.retrieve_instance(small_study.study_uid, unc.series_uid, unc.sop_uids[3])
    assert np.array_equal(one.pixel_array, pydicom.dcmread(unc.paths[3]).pixel_array)
    with pytest.raises(NotFound):
        local.retrieve_instance(small_study.study_uid, unc.series_uid, "1.2.3")
    with pytest.raises(NotFound):
        local.series_metadata(small_study.study_uid, "1.2.3")
    assert local.search_instances(small_study.study_uid, "1.2.3") == []


def test_skips_what_is_not_dicom_and_rescans(tmp_path: Path, study_root: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "text.dcm").write_bytes(b"hello" * 100)
    source = LocalFolderSource(folder)
    assert source.search_studies() == []
    first = next((study_root / "uncompressed").glob("*.dcm"))
    (folder / "sub").mkdir()
    (folder / "sub" / "one.dcm").write_bytes(first.read_bytes())
    assert source.rescan() == 1
    assert len(source.search_studies()) == 1


def test_open_files_and_folders_together(
    small_study: phantom.StudyManifest, tmp_path: Path
) -> None:
    unc = small_study.series["uncompressed"]
    mf = small_study.series["multiframe"]
    junk = tmp_path / "readme.txt"
    junk.write_text("not DICOM")
    # Two files of one series, a whole other series' folder, a file twice, junk.
    picked = [unc.paths[3], unc.paths[1], mf.paths[0].parent, unc.paths[1], junk]
    source = LocalFolderSource(picked)
    (study,) = source.search_studies()
    assert study.study_uid == small_study.study_uid
    assert study.instance_count == 2 + len(mf.paths)
    assert source.skipped == 1
    series = {s.series_uid: s.instance_count for s in source.search_series(study.study_uid)}
    assert series == {unc.series_uid: 2, mf.series_uid: len(mf.paths)}
    # Files of the study for "Store on server": series by number, then instance order.
    files = source.files(small_study.study_uid)
    numbers = {v: s.series_number for v, s in small_study.series.items()}
    first = unc if numbers["uncompressed"] < numbers["multiframe"] else mf
    assert files[0] in first.paths
    assert source.files(small_study.study_uid, unc.series_uid) == [unc.paths[1], unc.paths[3]]
    with pytest.raises(NotFound):
        source.files("1.2.3.4")
    common = Path(os.path.commonpath([unc.paths[0], mf.paths[0], junk]))
    assert source.server == f"4 files and folders in {common}"
    assert LocalFolderSource(unc.paths[:2]).server == f"2 files in {unc.paths[0].parent}"
    assert LocalFolderSource(unc.paths[0]).server == str(unc.paths[0])
    with pytest.raises(ValueError, match="at least one"):
        LocalFolderSource([])


def test_a_folder_without_dicom_counts_what_it_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"\0" * 400)
    source = LocalFolderSource(tmp_path)
    assert source.search_studies() == []
    assert source.skipped == 2
