"""State of the DICOMs page: the search form, the study table, the opened study's series.

Plain Python (no dearpygui): the page renders it and calls its methods. The network
is behind two injected callables, so tests drive searches, paging and sorting with
fakes and no display:

* `search(query, limit, offset, fuzzy)` returns one page of `StudySummary` (on a
  worker, through `BackgroundTasks`);
* `open_study(study_uid)` starts fetching the study's series; the app feeds the
  result back with `study_opened` / `thumbnail` (the loader's events).

Sorting applies to the rows loaded so far ("load more" fetches the next page in the
server's order and the sort is applied again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from net import QIDO_RECORD_CEILING, SeriesSummary, StudyQuery, StudySummary, TooManyResults

from .state import AppState, Signal
from .ui_thread import BackgroundTasks

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "NON_IMAGE",
    "QUICK_DATES",
    "SORT_KEYS",
    "SearchForm",
    "StudiesState",
    "StudiesTopic",
    "parse_date",
    "quick_range",
    "series_kind",
]

StudiesTopic = Literal["form", "results", "series", "thumbnail", "store", "scan"]
Status = Literal["idle", "loading", "ready", "empty", "error"]
SearchFn = Callable[[StudyQuery, int, int, bool], list[StudySummary]]

DEFAULT_PAGE_SIZE = 50
#: Quick picks of the date range: label -> days back from today (0 = today only).
QUICK_DATES: dict[str, int] = {"Today": 0, "Last 7 days": 6, "Last 30 days": 29}
#: Modalities of series that are not images, and what to call them.
NON_IMAGE: dict[str, str] = {
    "SR": "Structured report",
    "KO": "Key object selection",
    "PR": "Presentation state",
    "SEG": "Segmentation",
    "DOC": "Encapsulated document (PDF)",
    "RTSTRUCT": "RT structure set",
    "RTPLAN": "RT plan",
    "REG": "Registration",
}


def _sort_date(study: StudySummary) -> tuple[dt.date, str]:
    return (study.study_date or dt.date.min, study.study_time)


#: Sortable columns: key -> (label, sort key).
SORT_KEYS: dict[str, tuple[str, Callable[[StudySummary], Any]]] = {
    "patient_name": ("Patient", lambda s: s.patient_name.lower()),
    "patient_id": ("Patient ID", lambda s: s.patient_id),
    "study_date": ("Date", _sort_date),
    "modalities": ("Modality", lambda s: "/".join(s.modalities)),
    "description": ("Description", lambda s: s.description.lower()),
    "accession_number": ("Accession", lambda s: s.accession_number),
    "instance_count": ("Images", lambda s: s.instance_count or 0),
}


def parse_date(text: str) -> dt.date | None:
    """``YYYY-MM-DD`` or ``YYYYMMDD``; None for empty. ValueError says what is wrong."""
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")


def quick_range(label: str, today: dt.date) -> tuple[str, str]:
    """The date fields for a quick pick ("Today", "Last 7 days"...)."""
    start = today - dt.timedelta(days=QUICK_DATES[label])
    return start.isoformat(), today.isoformat()


def series_kind(series: SeriesSummary) -> str | None:
    """What a non-image series is ("Structured report"...); None for images."""
    return NON_IMAGE.get(series.modality.upper())


@dataclass
class SearchForm:
    patient_name: str = ""
    patient_id: str = ""
    date_from: str = ""
    date_to: str = ""
    modality: str = ""
    accession_number: str = ""
    description: str = ""

    def query(self) -> StudyQuery:
        """The QIDO query; ValueError names a field that does not parse."""
        start, end = parse_date(self.date_from), parse_date(self.date_to)
        if start is not None and end is not None and start > end:
            raise ValueError("The start date is after the end date.")
        return StudyQuery(
            patient_name=self.patient_name.strip(),
            patient_id=self.patient_id.strip(),
            study_date_from=start,
            study_date_to=end,
            modality=self.modality.strip().upper(),
            accession_number=self.accession_number.strip(),
            description=self.description.strip(),
        )


@dataclass
class OpenedStudy:
    study: StudySummary
    series: tuple[SeriesSummary, ...] = ()
    loading: bool = True
    error: str | None = None
    #: Thumbnails by series UID (float32 RGBA arrays, as the loader gives them).
    thumbnails: dict[str, Any] = field(default_factory=dict)


class StudiesState:
    """The search form, its results and the study opened from them."""

    def __init__(
        self,
        app: AppState,
        tasks: BackgroundTasks,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.app = app
        self.tasks = tasks
        self.page_size = page_size
        self._today = today
        self.changed: Signal[StudiesTopic] = Signal()
        self.form = SearchForm()
        self.fuzzy = False
        self.fuzzy_supported = False
        self.source_name = ""
        self._search: SearchFn | None = None
        self._open_study: Callable[[str], object] | None = None
        #: Rows in the server's order (what "load more" continues); `rows` is sorted.
        self._server_order: list[StudySummary] = []
        #: Records the server sent for this search (its offsets count them, repeats too).
        self._records = 0
        self.rows: list[StudySummary] = []
        self.status: Status = "idle"
        self.message = "Choose a server in Settings to search its studies."
        self.has_more = False
        self.sort_key = "study_date"
        self.sort_descending = True
        self.opened: OpenedStudy | None = None
        #: Called with (study UID, series UID) when the user opens a series.
        self.on_open_series: Callable[[str, str], None] = lambda study, series: None
        #: The list shows local files (File > Open), not a server's studies.
        self.local = False
        #: Why a local source lists nothing (e.g. "no DICOM files in …"), if it knows.
        self.describe_empty: Callable[[], str | None] = lambda: None
        #: What a local source adds to the count ("3 duplicates not listed"…).
        self.describe_notes: Callable[[], str] = lambda: ""
        #: A local scan's progress line while it runs (and its last word after).
        self.scan_line = ""
        self.scanning = False
        self.on_cancel_scan: Callable[[], None] = lambda: None
        #: Called after each page of results is in (the app opens a lone study).
        self.on_results: Callable[[], None] = lambda: None
        #: The server a local study can be stored on ("Store on …"), None if none can.
        self.store_target: str | None = None
        #: What the last or running store says (shown under the series).
        self.store_status = ""
        self.storing = False
        #: Called with the study UID when the user asks to store the opened study.
        self.on_store: Callable[[str], None] = lambda study_uid: None
        #: The selected server's name while the list shows local files ("Back to …").
        self.server_name: str | None = None
        self.on_back_to_server: Callable[[], None] = lambda: None

    # -- the source -------------------------------------------------------------------

    @property
    def search_fn(self) -> SearchFn | None:
        """How the listed source is searched (None without one): the Viewer's
        "Compare…" asks it for a patient's other studies."""
        return self._search

    def set_source(
        self,
        name: str,
        search: SearchFn | None,
        open_study: Callable[[str], object] | None,
        *,
        fuzzy_supported: bool = False,
        message: str | None = None,
        local: bool = False,
        describe_empty: Callable[[], str | None] | None = None,
        describe_notes: Callable[[], str] | None = None,
    ) -> None:
        """A (new) server to search; None with a `message` when there is none to use.

        `local`: the source is files opened from disk (File > Open).
        """
        self.source_name = name
        self.local = local
        self.describe_empty = describe_empty or (lambda: None)
        self.describe_notes = describe_notes or (lambda: "")
        self.scan_line, self.scanning = "", False
        self.store_status = ""
        self._search = search
        self._open_study = open_study
        self.fuzzy_supported = fuzzy_supported
        self.fuzzy = fuzzy_supported
        self._server_order, self.rows, self.has_more, self.opened = [], [], False, None
        self.status = "idle"
        self.message = message or (f"Search {name}." if search else "No server to search.")
        self.changed.emit("form")
        self.changed.emit("results")
        self.changed.emit("series")
        self.changed.emit("store")
        self.changed.emit("scan")

    def set_scan(self, line: str, *, scanning: bool) -> None:
        """A local scan's progress (files scanned / found) and whether it still runs."""
        self.scan_line, self.scanning = line, scanning
        self.changed.emit("scan")

    def cancel_scan(self) -> None:
        if self.scanning:
            self.on_cancel_scan()

    # -- the form -----------------------------------------------------------------------

    def set_field(self, name: str, value: str) -> None:
        if not hasattr(self.form, name):
            raise KeyError(name)
        setattr(self.form, name, value)

    def set_fuzzy(self, on: bool) -> None:
        self.fuzzy = on and self.fuzzy_supported
        self.changed.emit("form")

    def quick_dates(self, label: str) -> None:
        self.form.date_from, self.form.date_to = quick_range(label, self._today())
        self.changed.emit("form")

    def clear(self) -> None:
        self.form = SearchForm()
        self.changed.emit("form")

    # -- searching ----------------------------------------------------------------------

    def search(self) -> None:
        """A new search from the first page."""
        self._fetch(offset=0)

    def refresh(self) -> None:
        """Ask again for the rows loaded so far, keeping them on screen meanwhile (a
        local scan found more); a search still running is asked again instead (its
        answer may predate what the scan found)."""
        self._fetch(offset=0, refresh=self.status != "loading")

    def load_more(self) -> None:
        if self.has_more and self.status != "loading":
            self._fetch(offset=self._records)

    def _fetch(self, offset: int, *, refresh: bool = False) -> None:
        search = self._search
        if search is None:
            self.status, self.message = "error", "Choose a server in Settings first."
            self.changed.emit("results")
            return
        try:
            query = self.form.query()
        except ValueError as exc:
            self.status, self.message = "error", str(exc)
            self.changed.emit("results")
            return
        limit, fuzzy = self.page_size, self.fuzzy
        if refresh:
            limit = max(limit, len(self._server_order))
        elif offset == 0:
            self._server_order, self.rows, self._records = [], [], 0
        if not refresh:
            self.status, self.message = "loading", "Searching…"
            self.changed.emit("results")
        self.tasks.submit(
            "search",
            "Searching studies…",
            lambda cancel: search(query, limit, offset, fuzzy),
            on_done=(lambda page: self._results(page, replace=True, limit=limit))
            if refresh
            else self._results,
            on_error=self._failed,
        )

    def _results(
        self, page: list[StudySummary], *, replace: bool = False, limit: int | None = None
    ) -> None:
        if replace:
            self._server_order, self._records = [], 0
        # Keyed by UID: a server can list one study twice (Orthanc, two patients
        # sharing a Study Instance UID), and a row per UID is what the table shows.
        seen = {s.study_uid for s in self._server_order}
        fresh: list[StudySummary] = []
        for study in page:
            if study.study_uid not in seen:
                seen.add(study.study_uid)
                fresh.append(study)
        self._server_order.extend(fresh)
        self._records += len(page)
        # A full page may have more after it; a page with nothing new means the server
        # ignores offset (the same page again): stop rather than loop.
        self.has_more = len(page) >= (limit or self.page_size) and bool(fresh)
        if self.has_more and self._records >= QIDO_RECORD_CEILING:
            self._capped()  # no further page can be asked for (AWS HealthImaging)
            return
        self._sort()
        count = len(self.rows)
        self.status = "ready" if count else "empty"
        self.message = (
            (self.describe_empty() or "No studies match.")
            if not count
            else f"{count} {'study' if count == 1 else 'studies'}"
        )
        if self.has_more:
            self.message += " (more on the server)" if not self.local else " (more below)"
        notes = self.describe_notes() if count else ""
        if notes:
            self.message += f" · {notes}"
        self.changed.emit("results")
        self.on_results()

    def _capped(self) -> None:
        self.has_more = False
        self._sort()
        count = len(self.rows)
        self.status = "ready"
        self.message = (
            f"Showing the first {count} {'study' if count == 1 else 'studies'}; "
            "narrow the search to see the others (the server lists no more)."
        )
        self.changed.emit("results")

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, TooManyResults) and self._server_order:
            self._capped()
            return
        self.status = "error"
        self.message = f"The search failed: {getattr(exc, 'message', None) or exc}"
        self.changed.emit("results")

    # -- sorting ------------------------------------------------------------------------

    def sort_by(self, key: str, descending: bool | None = None) -> None:
        """Sort by a column; the same column again flips the direction."""
        if key not in SORT_KEYS:
            raise KeyError(key)
        if descending is None:
            descending = not self.sort_descending if key == self.sort_key else False
        self.sort_key, self.sort_descending = key, descending
        self._sort()
        self.changed.emit("results")

    def _sort(self) -> None:
        sort_key = SORT_KEYS[self.sort_key][1]
        self.rows = sorted(self._server_order, key=sort_key, reverse=self.sort_descending)

    # -- the opened study ---------------------------------------------------------------

    def open_study(self, study_uid: str) -> None:
        study = next((s for s in self.rows if s.study_uid == study_uid), None)
        if study is None or self._open_study is None:
            return
        self.opened = OpenedStudy(study)
        self.changed.emit("series")
        self._open_study(study_uid)

    def refresh_opened(self) -> None:
        """Ask again for the opened study's series (a local scan found more of them);
        what is shown stays, thumbnails included, until the answer replaces the list."""
        opened = self.opened
        if opened is None or opened.loading or self._open_study is None:
            return
        self._open_study(opened.study.study_uid)

    def study_opened(self, study_uid: str, series: tuple[SeriesSummary, ...]) -> None:
        opened = self.opened
        if opened is None or opened.study.study_uid != study_uid:
            return  # a study the user left meanwhile
        opened.series = tuple(
            sorted(series, key=lambda s: (s.series_number is None, s.series_number or 0))
        )
        opened.loading = False
        self.changed.emit("series")

    def study_failed(self, message: str) -> None:
        if self.opened is not None and self.opened.loading:
            self.opened.loading = False
            self.opened.error = message
            self.changed.emit("series")

    def thumbnail(self, study_uid: str, series_uid: str, image: Any) -> None:
        opened = self.opened
        if opened is not None and opened.study.study_uid == study_uid:
            opened.thumbnails[series_uid] = image
            self.changed.emit("thumbnail")

    def open_series(self, series_uid: str) -> None:
        opened = self.opened
        if opened is None:
            return
        series = next((s for s in opened.series if s.series_uid == series_uid), None)
        if series is None:
            return
        kind = series_kind(series)
        if kind is not None:
            # Never handed to the image viewer: it would have nothing to draw.
            self.app.notify("info", f"Series {series.series_number or ''} is a {kind.lower()}, "
                            "not images; it cannot be shown in the viewer yet.")  # fmt: skip
            return
        self.on_open_series(opened.study.study_uid, series_uid)

    # -- storing local files on the server --------------------------------------------

    def set_store_target(self, server: str | None) -> None:
        """The server "Store on …" sends to (None: the button is not offered)."""
        self.store_target = server
        self.changed.emit("store")

    def set_server_name(self, server: str | None) -> None:
        self.server_name = server
        self.changed.emit("store")

    def store_opened(self) -> None:
        """Store the opened (local) study on `store_target`."""
        opened = self.opened
        if opened is None or not self.local or self.store_target is None or self.storing:
            return
        self.on_store(opened.study.study_uid)

    def set_store_status(self, text: str, *, storing: bool) -> None:
        self.store_status, self.storing = text, storing
        self.changed.emit("store")
