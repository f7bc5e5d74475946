"""Thumbnails of large images are averaged from stored values, so thin lines stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.largeimage import line_column, write_mammograms
from viewer.loader import LocalFolderSource, SeriesLoader, ThumbnailReady
from viewer.phantom import read_slice_code

WAIT = 60.0


def test_a_mammogram_thumbnail_shows_its_one_pixel_line_and_its_code(tmp_path: Path) -> None:
    # 1024x832 keeps the test small; the line is one stored pixel, 1/8 of a thumbnail pixel.
    paths = write_mammograms(tmp_path / "mg", 3, rows=1024, columns=832, seed="thumb")
    source = LocalFolderSource(paths[0].parent)
    study_uid = source.search_studies()[0].study_uid
    series_uid = source.search_series(study_uid)[0].series_uid
    with SeriesLoader(source, owns_source=True) as loader:
        loader.open_study(study_uid).result(WAIT)
        image = loader.request_thumbnail(series_uid, size=(104, 128)).result(WAIT)
        assert any(isinstance(e, ThumbnailReady) for e in loader.drain())
    assert image.shape == (128, 104, 4) and image.dtype == np.float32
    assert read_slice_code(image, (1024, 832)) == 1  # the middle of three
    # The line at column 750 of 832 is thumbnail column 93.75.
    assert line_column(832) == 750
    grey = image[20:100, :, 0]
    assert np.all(grey[:, 92:96].max(axis=1) > np.maximum(grey[:, 89], grey[:, 99]) + 0.01)
