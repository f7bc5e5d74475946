"""The shell's state, the UI queue and background tasks, and the display check: no display."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from viewer.app import display
from viewer.app.state import AppState, Confirmation, Signal
from viewer.app.ui_thread import BackgroundTasks, CancelToken, UiQueue

REPO = Path(__file__).resolve().parents[2]


# --- Signal and AppState ---------------------------------------------------------------


def test_a_failing_listener_does_not_stop_the_others() -> None:
    signal: Signal[str] = Signal()
    seen: list[str] = []

    def broken(value: str) -> None:
        raise RuntimeError("boom")

    signal.connect(broken)
    disconnect = signal.connect(seen.append)
    signal.emit("page")
    assert seen == ["page"]
    disconnect()
    signal.emit("status")
    assert seen == ["page"]


def test_guard_runs_at_once_without_unsaved_edits_and_asks_with_them() -> None:
    app = AppState()
    ran: list[str] = []
    app.guard("Go?", lambda: ran.append("now"), confirm_label="Go")
    assert ran == ["now"] and app.confirmation is None

    app.unsaved_changes = lambda: "You have unsaved changes to 'X'."
    app.guard("Go?", lambda: ran.append("later"), confirm_label="Discard")
    assert ran == ["now"]
    assert app.confirmation is not None
    assert app.confirmation.confirm_label == "Discard"
    assert "unsaved changes to 'X'" in app.confirmation.message
    app.answer(False)
    assert ran == ["now"] and app.confirmation is None
    app.guard("Go?", lambda: ran.append("later"), confirm_label="Discard")
    app.answer(True)
    assert ran == ["now", "later"]


def test_quitting_with_unsaved_edits_needs_a_confirmation() -> None:
    app = AppState()
    topics: list[str] = []
    app.changed.connect(topics.append)
    app.unsaved_changes = lambda: "unsaved"
    app.request_exit()
    assert not app.exit_requested and app.confirmation is not None
    app.answer(True)
    assert app.exit_requested and topics[-1] == "exit"


def test_quitting_with_unsaved_measurements_says_so_beside_unsaved_settings() -> None:
    app = AppState()
    lost: list[str | None] = [None]
    app.exit_checks.append(lambda: lost[0])
    app.request_exit()
    assert app.exit_requested and app.confirmation is None  # nothing to lose
    app.exit_requested = False
    lost[0] = "2 measurement(s) are not saved."
    app.unsaved_changes = lambda: "You have unsaved changes to 'X'."
    app.request_exit()
    assert not app.exit_requested and app.confirmation is not None
    assert "2 measurement(s)" in app.confirmation.message
    assert "unsaved changes to 'X'" in app.confirmation.message
    app.answer(False)
    assert not app.exit_requested
    app.request_exit()
    app.answer(True)
    assert app.exit_requested


def test_navigation_emits_only_on_change() -> None:
    app = AppState()
    topics: list[str] = []
    app.changed.connect(topics.append)
    app.navigate("studies")
    app.navigate("settings")
    assert topics == ["page"] and app.page == "settings"


def test_answer_without_a_dialog_is_harmless() -> None:
    app = AppState()
    app.answer(True)
    app.ask(Confirmation("t", "m", "OK", on_confirm=lambda: None))
    app.answer(True)
    assert app.confirmation is None


# --- UiQueue and BackgroundTasks -------------------------------------------------------


def test_results_arrive_on_the_ui_thread_only_when_the_queue_is_drained() -> None:
    ui = UiQueue()
    tasks = BackgroundTasks(ui)
    threads: list[str] = []
    tasks.submit(
        "check",
        "Testing…",
        lambda cancel: threading.current_thread().name,
        on_done=lambda worker: threads.extend([worker, threading.current_thread().name]),
    )
    assert tasks.wait_until_idle(10)
    assert threads[0].startswith("zhiva-ui-worker")
    assert threads[1] == threading.current_thread().name
    tasks.shutdown()


def test_a_newer_task_of_the_same_kind_supersedes_the_older_one() -> None:
    ui = UiQueue()
    activity: list[tuple[str, ...]] = []
    tasks = BackgroundTasks(ui, on_activity=activity.append)
    release = threading.Event()
    got: list[str] = []
    cancelled: list[str] = []

    def slow(cancel: CancelToken) -> str:
        cancel.on_cancel(lambda: cancelled.append("first"))
        release.wait(10)
        return "first"

    first = tasks.submit("check", "first", slow, on_done=got.append)
    tasks.submit("check", "second", lambda cancel: "second", on_done=got.append)
    assert first.cancelled and cancelled == ["first"]
    release.set()
    assert tasks.wait_until_idle(10)
    first.future.result(timeout=10)
    ui.drain()
    assert got == ["second"]  # the first one's answer was dropped
    assert activity[-1] == ()
    tasks.shutdown()


def handled(future: Future[Any]) -> threading.Event:
    """Set once `BackgroundTasks` has handled the finished `future` (done callbacks run
    in the order they were added: this one after the tasks' own)."""
    event = threading.Event()
    future.add_done_callback(lambda _: event.set())
    return event


def test_a_superseded_tasks_result_goes_to_on_discard_not_to_on_done() -> None:
    # A connect task makes clients: superseded while it ran, they must still be closed.
    ui = UiQueue()
    tasks = BackgroundTasks(ui)
    release = threading.Event()
    done: list[str] = []
    discarded: list[str] = []

    def slow(cancel: CancelToken) -> str:
        release.wait(10)
        return "first"

    first = tasks.submit("connect", "first", slow, on_done=done.append,
                         on_discard=discarded.append)  # fmt: skip
    first_handled = handled(first.future)
    tasks.submit("connect", "second", lambda cancel: "second", on_done=done.append,
                 on_discard=discarded.append)  # fmt: skip
    release.set()
    assert first_handled.wait(10)
    assert tasks.wait_until_idle(10)
    ui.drain()
    assert done == ["second"] and discarded == ["first"]
    tasks.shutdown()


def test_a_result_that_arrives_after_its_task_was_cancelled_is_discarded_once() -> None:
    ui = UiQueue()
    tasks = BackgroundTasks(ui)
    finished, cancelled = threading.Event(), threading.Event()
    discarded: list[tuple[str, str]] = []

    def work(cancel: CancelToken) -> str:
        cancelled.wait(10)
        return "late"

    def discard(result: str) -> None:
        discarded.append((result, threading.current_thread().name))
        finished.set()

    # Cancelled while its work runs: the result is discarded on the worker, at once
    # (after a shutdown nothing drains the UI queue any more).
    task = tasks.submit("connect", "c", work, on_done=lambda _: None, on_discard=discard)
    tasks.shutdown(cancel_futures=True)
    cancelled.set()
    assert finished.wait(10)
    task.future.result(timeout=10)
    assert discarded == [("late", discarded[0][1])] and discarded[0][1].startswith("zhiva-ui")
    ui.drain()  # nothing is left for the UI thread to discard again
    assert len(discarded) == 1

    # Cancelled after its work ended, before the UI thread delivered it: discarded there.
    ui, later = UiQueue(), []
    tasks = BackgroundTasks(ui)
    task = tasks.submit("connect", "c", lambda cancel: "ended", on_done=lambda _: None,
                        on_discard=later.append)  # fmt: skip
    assert handled(task.future).wait(10)  # its answer is posted to the UI thread
    tasks.cancel("connect")
    ui.drain()
    assert later == ["ended"]
    tasks.shutdown()


def test_worker_errors_go_to_on_error_or_the_notice_sink() -> None:
    ui = UiQueue()
    unhandled: list[str] = []
    tasks = BackgroundTasks(ui, on_unhandled=unhandled.append)
    errors: list[BaseException] = []

    def fail(cancel: CancelToken) -> None:
        raise ValueError("no luck")

    tasks.submit("a", "A", fail, on_done=lambda _: None, on_error=errors.append)
    tasks.submit("b", "Loading B", fail, on_done=lambda _: None)
    assert tasks.wait_until_idle(10)
    assert [str(e) for e in errors] == ["no luck"]
    assert unhandled == ["Loading B failed: no luck"]
    tasks.shutdown()


def test_cancel_and_shutdown() -> None:
    ui = UiQueue()
    tasks = BackgroundTasks(ui)
    stop = threading.Event()
    token_seen: list[CancelToken] = []

    def wait(cancel: CancelToken) -> None:
        token_seen.append(cancel)
        cancel.on_cancel(stop.set)
        stop.wait(10)

    tasks.submit("signin", "Signing in", wait, on_done=lambda _: None)
    assert tasks.running("signin")
    tasks.shutdown(cancel_futures=True, wait=True)
    assert stop.is_set() and not tasks.running("signin")
    with pytest.raises(RuntimeError):
        tasks.submit("x", "x", lambda cancel: None, on_done=lambda _: None)


def test_a_cancel_hook_added_after_cancel_runs_at_once() -> None:
    token = CancelToken()
    token.cancel()
    ran: list[int] = []
    token.on_cancel(lambda: ran.append(1))
    assert ran == [1] and token.cancelled


# --- the display check -----------------------------------------------------------------


def test_no_display_says_how_to_run_it() -> None:
    with pytest.raises(display.NoDisplay) as info:
        display.check_display({})
    assert "DISPLAY is not set" in str(info.value)
    assert "xvfb-run" in str(info.value)


def test_a_display_that_cannot_be_opened_is_named() -> None:
    with pytest.raises(display.NoDisplay, match="':4711' cannot be opened"):
        display.check_display({"DISPLAY": ":4711"})


@pytest.mark.parametrize(
    ("env", "xft", "expected"),
    [
        ({}, None, 1.0),
        ({}, "192", 2.0),
        ({}, "144", 1.5),
        ({"ZHIVA_UI_SCALE": "1.3"}, "192", 1.25),
        ({"ZHIVA_UI_SCALE": "40"}, None, 4.0),
        ({"ZHIVA_UI_SCALE": "nonsense"}, None, 1.0),
        ({"GDK_SCALE": "2"}, None, 2.0),
    ],
)
def test_ui_scale(env: dict[str, str], xft: str | None, expected: float) -> None:
    assert display._scale_from(env, xft) == expected


def test_the_app_without_a_display_exits_2_with_the_message(isolated_env: Path) -> None:
    env = {
        k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "viewer", "--config-dir", str(isolated_env)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot open the window: no X display (DISPLAY is not set)" in done.stderr
    assert "xvfb-run -a" in done.stderr
    assert "Aborted" not in done.stderr
