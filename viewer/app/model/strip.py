"""The thumbnail strip's content, and the same patient's other studies ("Compare…").

`StudyStrip` knows the image series of the studies the Viewer shows (in series
order, with their thumbnails as they arrive) and which study the strip lists (the
active viewport's); `fill_order` is the order a study fills a layout in. `Priors`
is the result of asking the source for the patient's other studies (QIDO by Patient
ID), run in the background. Plain Python: no GUI, no network (the page passes the
functions that search).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..state import Signal

if TYPE_CHECKING:
    from net import SeriesSummary, StudySummary

    from ..ui_thread import BackgroundTasks

__all__ = ["Priors", "StripStudy", "StudyStrip", "image_series"]

StripTopic = Literal["studies", "thumbnail", "shown"]
PriorsTopic = Literal["results"]
#: Series without images to show (structured reports, presentation states...).
_NOT_IMAGES = frozenset({"SR", "KO", "PR", "SEG", "DOC", "RTSTRUCT", "RTPLAN", "REG"})


def image_series(
    series: tuple[SeriesSummary, ...] | list[SeriesSummary],
) -> tuple[SeriesSummary, ...]:
    """The series a viewport can show, in series-number order (unnumbered last)."""
    shown = [s for s in series if s.modality.upper() not in _NOT_IMAGES]
    return tuple(sorted(shown, key=lambda s: (s.series_number is None, s.series_number or 0)))


@dataclass
class StripStudy:
    study_uid: str
    series: tuple[SeriesSummary, ...]
    #: What opens them (the loader of the source they were listed from).
    loader: Any
    label: str = ""
    thumbnails: dict[str, Any] = field(default_factory=dict)


class StudyStrip:
    """The studies the strip can list; `shown` is the one it lists now."""

    def __init__(self) -> None:
        self.changed: Signal[StripTopic] = Signal()
        self.studies: dict[str, StripStudy] = {}
        self.shown: StripStudy | None = None

    def set_study(
        self,
        study_uid: str,
        series: tuple[SeriesSummary, ...] | list[SeriesSummary],
        loader: Any,
        *,
        label: str = "",
        thumbnails: dict[str, Any] | None = None,
    ) -> StripStudy:
        """A study's series (only images are kept), listed from now on."""
        known = self.studies.get(study_uid)
        study = StripStudy(study_uid, image_series(series), loader, label)
        if known is not None:
            study.thumbnails.update(known.thumbnails)
        if thumbnails:
            study.thumbnails.update(thumbnails)
        self.studies[study_uid] = study
        self.changed.emit("studies")
        self.show(study_uid)
        return study

    def update(
        self, study_uid: str, series: tuple[SeriesSummary, ...] | list[SeriesSummary]
    ) -> None:
        """A study the strip knows, listed again (its counts changed): its new series,
        the same label, loader and thumbnails; which study is shown does not change."""
        known = self.studies.get(study_uid)
        if known is None:
            return
        known.series = image_series(series)
        self.changed.emit("studies")

    def show(self, study_uid: str | None) -> None:
        """List `study_uid`'s series (a study the strip knows; others change nothing)."""
        study = self.studies.get(study_uid) if study_uid is not None else None
        if study is not None and study is not self.shown:
            self.shown = study
            self.changed.emit("shown")

    def add_thumbnail(self, study_uid: str, series_uid: str, image: Any) -> None:
        study = self.studies.get(study_uid)
        if study is not None and any(s.series_uid == series_uid for s in study.series):
            study.thumbnails[series_uid] = image
            self.changed.emit("thumbnail")

    def fill_order(self, study_uid: str, first: str | None = None) -> list[SeriesSummary]:
        """The study's series in the order they fill a layout: `first`, then the ones
        after it, then those before it (all of them in series order without `first`)."""
        study = self.studies.get(study_uid)
        if study is None:
            return []
        series = list(study.series)
        start = next((n for n, s in enumerate(series) if s.series_uid == first), 0)
        return series[start:] + series[:start]


class Priors:
    """The patient's other studies, found in the background ("Compare…")."""

    def __init__(self) -> None:
        self.changed: Signal[PriorsTopic] = Signal()
        self.status: Literal["idle", "searching", "done", "error"] = "idle"
        self.message = ""
        self.patient = ""
        self.studies: list[StudySummary] = []

    def search(
        self,
        tasks: BackgroundTasks,
        find: Callable[[str], list[StudySummary]],
        patient_id: str,
        *,
        exclude: str = "",
        patient: str = "",
    ) -> None:
        """Search `find(patient_id)` on a worker; the results leave out `exclude` (the
        study on screen) and come newest first."""
        self.patient = patient or patient_id
        self.studies = []
        if not patient_id:
            self.status, self.message = "error", "This image has no Patient ID to search by."
            self.changed.emit("results")
            return
        self.status, self.message = "searching", f"Searching {self.patient}'s studies…"
        self.changed.emit("results")

        def done(found: list[StudySummary]) -> None:
            self.studies = sorted(
                (s for s in found if s.study_uid != exclude),
                key=lambda s: (s.study_date is not None, s.study_date, s.study_time),
                reverse=True,
            )
            self.status = "done"
            count = len(self.studies)
            self.message = (
                f"{count} other stud{'y' if count == 1 else 'ies'} of {self.patient}"
                if count
                else f"No other studies of {self.patient} on this server."
            )
            self.changed.emit("results")

        def failed(exc: BaseException) -> None:
            self.status = "error"
            self.message = f"The search failed: {getattr(exc, 'message', None) or exc}"
            self.changed.emit("results")

        tasks.submit(
            "priors", f"Searching {self.patient}'s studies…",
            lambda cancel: find(patient_id), on_done=done, on_error=failed,
        )  # fmt: skip
