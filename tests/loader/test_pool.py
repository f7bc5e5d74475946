"""WorkerPool: workers run below the UI thread when asked (Linux)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from viewer.loader._pool import WorkerPool


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_workers_take_the_requested_niceness_and_the_caller_keeps_its_own() -> None:
    cond = threading.Condition()
    seen: list[int] = []
    done = threading.Event()

    def take():  # type: ignore[no-untyped-def]
        if done.is_set():
            return None, None

        def job() -> None:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            done.set()

        return job, None

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = WorkerPool(1, cond, take, lambda exc: None, name="test-pool", niceness=before + 5)
    assert done.wait(30)
    assert pool.stop(timeout=30)
    assert seen == [before + 5]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
