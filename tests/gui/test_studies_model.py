"""The DICOMs page's state with no display: query building, paging, sorting, series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from net import SeriesSummary, StudyQuery, StudySummary
from viewer.app.state import AppState
from viewer.app.studies_state import SearchForm, StudiesState, parse_date, quick_range
from viewer.app.ui_thread import BackgroundTasks, UiQueue

TODAY = dt.date(2024, 3, 10)


def _study(n: int, **kw: object) -> StudySummary:
    fields: dict[str, object] = {
        "study_uid": f"1.2.{n}",
        "patient_name": f"Patient^{n:02d}",
        "patient_id": f"P{n:02d}",
        "study_date": dt.date(2024, 1, 1) + dt.timedelta(days=n),
    }
    fields.update(kw)
    return StudySummary(**fields)  # type: ignore[arg-type]


class FakeServer:
    def __init__(self, studies: list[StudySummary], *, ignores_offset: bool = False) -> None:
        self.studies = studies
        self.ignores_offset = ignores_offset
        self.calls: list[tuple[StudyQuery, int, int, bool]] = []

    def search(self, query: StudyQuery, limit: int, offset: int, fuzzy: bool) -> list[StudySummary]:
        self.calls.append((query, limit, offset, fuzzy))
        start = 0 if self.ignores_offset else offset
        return self.studies[start : start + limit]


@pytest.fixture
def studies() -> Iterator[StudiesState]:
    app = AppState()
    tasks = BackgroundTasks(UiQueue(), on_activity=app.set_activity)
    state = StudiesState(app, tasks, page_size=3, today=lambda: TODAY)
    yield state
    tasks.shutdown()


def _settle(state: StudiesState) -> None:
    assert state.tasks.wait_until_idle(10)


def test_the_form_builds_the_query_and_rejects_bad_dates() -> None:
    form = SearchForm(
        patient_name=" Doe ", modality="ct", date_from="2024-01-02", date_to="20240105"
    )
    query = form.query()
    assert query.patient_name == "Doe" and query.modality == "CT"
    assert (query.study_date_from, query.study_date_to) == (
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 5),
    )
    with pytest.raises(ValueError, match="not a date"):
        SearchForm(date_from="yesterday").query()
    with pytest.raises(ValueError, match="after the end"):
        SearchForm(date_from="2024-02-01", date_to="2024-01-01").query()
    assert parse_date("") is None


def test_quick_date_picks() -> None:
    assert quick_range("Today", TODAY) == ("2024-03-10", "2024-03-10")
    assert quick_range("Last 7 days", TODAY) == ("2024-03-04", "2024-03-10")


def test_search_pages_with_load_more_until_the_last_short_page(studies: StudiesState) -> None:
    server = FakeServer([_study(n) for n in range(7)])
    studies.set_source("PACS", server.search, lambda uid: None)
    studies.set_field("patient_name", "pat")
    studies.quick_dates("Last 7 days")
    studies.search()
    assert studies.status == "loading"
    _settle(studies)
    assert studies.status == "ready" and len(studies.rows) == 3 and studies.has_more
    query, limit, offset, fuzzy = server.calls[0]
    assert (query.patient_name, limit, offset, fuzzy) == ("pat", 3, 0, False)
    assert query.study_date_from == dt.date(2024, 3, 4)
    studies.load_more()
    _settle(studies)
    studies.load_more()
    _settle(studies)
    assert [c[2] for c in server.calls] == [0, 3, 6]
    assert len(studies.rows) == 7 and not studies.has_more
    studies.load_more()  # nothing more: no request
    assert len(server.calls) == 3


def test_a_server_that_ignores_offset_does_not_loop(studies: StudiesState) -> None:
    server = FakeServer([_study(n) for n in range(5)], ignores_offset=True)
    studies.set_source("PACS", server.search, lambda uid: None)
    studies.search()
    _settle(studies)
    studies.load_more()
    _settle(studies)
    assert len(studies.rows) == 3 and not studies.has_more


def test_a_study_listed_twice_is_one_row(studies: StudiesState) -> None:
    server = FakeServer([_study(1), _study(1, patient_name="Other"), _study(2)])
    studies.set_source("PACS", server.search, lambda uid: None)
    studies.search()
    _settle(studies)
    assert sorted(s.study_uid for s in studies.rows) == ["1.2.1", "1.2.2"]


def test_empty_and_error_states(studies: StudiesState) -> None:
    studies.search()  # no source
    assert studies.status == "error" and "Settings" in studies.message

    def broken(query: StudyQuery, limit: int, offset: int, fuzzy: bool) -> list[StudySummary]:
        raise OSError("connection refused")

    studies.set_source("PACS", broken, lambda uid: None)
    studies.search()
    _settle(studies)
    assert studies.status == "error" and "connection refused" in studies.message
    studies.set_source("PACS", FakeServer([]).search, lambda uid: None)
    studies.search()
    _settle(studies)
    assert studies.status == "empty" and studies.message == "No studies match."
    studies.set_field("date_from", "nonsense")
    studies.search()
    assert studies.status == "error" and "not a date" in studies.message


def test_sorting_by_columns_flips_on_the_same_column(studies: StudiesState) -> None:
    rows = [_study(1, patient_name="b"), _study(2, patient_name="a"), _study(3, patient_name="C")]
    studies.set_source("PACS", FakeServer(rows).search, lambda uid: None)
    studies.search()
    _settle(studies)
    assert [s.study_uid for s in studies.rows] == ["1.2.3", "1.2.2", "1.2.1"]  # newest first
    studies.sort_by("patient_name")
    assert [s.patient_name for s in studies.rows] == ["a", "b", "C"]
    studies.sort_by("patient_name")
    assert [s.patient_name for s in studies.rows] == ["C", "b", "a"]
    with pytest.raises(KeyError):
        studies.sort_by("nope")


def test_fuzzy_toggle_only_when_the_server_supports_it(studies: StudiesState) -> None:
    server = FakeServer([_study(1)])
    studies.set_source("PACS", server.search, lambda uid: None, fuzzy_supported=False)
    studies.set_fuzzy(True)
    assert not studies.fuzzy
    studies.set_source("PACS", server.search, lambda uid: None, fuzzy_supported=True)
    assert studies.fuzzy
    studies.set_fuzzy(False)
    studies.search()
    _settle(studies)
    assert server.calls[-1][3] is False


def test_opening_a_study_lists_series_and_non_images_are_not_opened(
    studies: StudiesState,
) -> None:
    opened: list[str] = []
    shown: list[tuple[str, str]] = []
    studies.set_source("PACS", FakeServer([_study(1)]).search, opened.append)
    studies.on_open_series = lambda study, series: shown.append((study, series))
    studies.search()
    _settle(studies)
    studies.open_study("1.2.1")
    assert opened == ["1.2.1"] and studies.opened is not None and studies.opened.loading
    series = (
        SeriesSummary(study_uid="1.2.1", series_uid="s2", modality="SR", series_number=2),
        SeriesSummary(study_uid="1.2.1", series_uid="s1", modality="CT", series_number=1),
    )
    studies.study_opened("other", series)  # a study the user left: ignored
    assert studies.opened.loading
    studies.study_opened("1.2.1", series)
    assert [s.series_uid for s in studies.opened.series] == ["s1", "s2"]
    studies.thumbnail("1.2.1", "s1", "image")
    assert studies.opened.thumbnails == {"s1": "image"}
    studies.open_series("s2")
    assert shown == [] and studies.app.notice is not None
    assert "structured report" in studies.app.notice.text
    studies.open_series("s1")
    assert shown == [("1.2.1", "s1")]


def test_a_server_ceiling_shows_the_first_results_and_asks_to_narrow(
    studies: StudiesState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS HealthImaging lists at most 10,000 records: no page past them is asked for.
    from viewer.app import studies_state

    monkeypatch.setattr(studies_state, "QIDO_RECORD_CEILING", 6)
    server = FakeServer([_study(n) for n in range(20)])
    studies.set_source("PACS", server.search, lambda uid: None)
    studies.search()
    _settle(studies)
    studies.load_more()
    _settle(studies)
    assert len(studies.rows) == 6 and not studies.has_more and studies.status == "ready"
    assert studies.message.startswith("Showing the first 6 studies; narrow the search")
    studies.load_more()
    assert len(server.calls) == 2


def test_a_refused_next_page_keeps_what_was_shown(studies: StudiesState) -> None:
    from net import TooManyResults

    server = FakeServer([_study(n) for n in range(20)])

    def search(query: StudyQuery, limit: int, offset: int, fuzzy: bool) -> list[StudySummary]:
        if offset >= 3:
            raise TooManyResults("no more", shown=offset)
        return server.search(query, limit, offset, fuzzy)

    studies.set_source("PACS", search, lambda uid: None)
    studies.search()
    _settle(studies)
    studies.load_more()
    _settle(studies)
    assert [s.study_uid for s in studies.rows] != [] and studies.status == "ready"
    assert "Showing the first 3 studies" in studies.message and not studies.has_more
