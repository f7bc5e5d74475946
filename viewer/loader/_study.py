"""What the loader remembers about the open study: its series and known headers.

With lazy load, opening a study fetches only its series list; without it, the
whole study's metadata, grouped here by series so opening any of them needs no
further request. Layouts built once are kept for the study's lifetime, so going
back to a series is immediate.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from net import SeriesSummary

from ._layout import InstanceHeader, SeriesLayout

__all__ = ["StudyState", "series_from_metadata"]


class StudyState:
    def __init__(self, generation: int, uid: str) -> None:
        self.generation = generation
        self.uid = uid
        self.series: dict[str, SeriesSummary] = {}
        #: Series headers known without another request (study metadata, a past load).
        self.headers: dict[str, list[InstanceHeader]] = {}
        self.layouts: dict[str, SeriesLayout] = {}


def series_from_metadata(
    study_uid: str, headers: Sequence[Dataset]
) -> tuple[tuple[SeriesSummary, ...], dict[str, list[Dataset]]]:
    """Series summaries and per-series headers from a study's metadata (no lazy load)."""
    by_series: dict[str, list[Dataset]] = {}
    for header in headers:
        by_series.setdefault(str(header.get("SeriesInstanceUID", "") or ""), []).append(header)
    summaries = []
    for uid, items in by_series.items():
        first = items[0]
        number = first.get("SeriesNumber")
        summaries.append(
            SeriesSummary(
                study_uid=study_uid,
                series_uid=uid,
                modality=str(first.get("Modality", "") or ""),
                series_number=int(number) if number not in (None, "") else None,
                description=str(first.get("SeriesDescription", "") or ""),
                body_part=str(first.get("BodyPartExamined", "") or ""),
                instance_count=len(items),
            )
        )
    summaries.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.series_uid))
    return tuple(summaries), by_series
