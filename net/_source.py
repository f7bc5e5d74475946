"""`StudySource`: what the UI and the series loader need from a place that holds studies.

`DicomWebClient` implements it over HTTP; a local-folder source implements it for the
demo study and File > Open, so both are driven through one interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from pydicom.dataset import Dataset

from ._models import InstanceSummary, SeriesSummary, StudyQuery, StudySummary

__all__ = ["StudySource"]


@runtime_checkable
class StudySource(Protocol):
    def search_studies(
        self,
        query: StudyQuery | None = None,
        *,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[StudySummary]: ...

    def search_series(
        self,
        study_uid: str,
        *,
        modality: str = "",
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[SeriesSummary]: ...

    def search_instances(
        self,
        study_uid: str,
        series_uid: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[InstanceSummary]: ...

    def series_metadata(self, study_uid: str, series_uid: str) -> list[Dataset]: ...

    def study_metadata(self, study_uid: str) -> list[Dataset]: ...

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]: ...

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset: ...

    def close(self) -> None: ...
