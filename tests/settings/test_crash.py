"""Crashes and concurrent writers with real processes (the real CLI), no sleeps.

A child started with ``ZHIVA_TEST_PAUSE_AT=<point>:settings.json`` prints a line when it
reaches that point of its write and blocks on stdin; the test reads the line, then kills
it with SIGKILL (a crash) or releases it (a slow writer holding the lock).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import msgspec
import pytest

from viewer.settings import Settings, SettingsLocked, SettingsStore

from .conftest import PYTHON, child_env, server

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")


def _cli_add(config_dir: Path, name: str, *, pause_at: str | None = None) -> subprocess.Popen[str]:
    extra = {"ZHIVA_TEST_PAUSE_AT": pause_at} if pause_at else {}
    return subprocess.Popen(
        [PYTHON, "-m", "viewer", "--config-dir", str(config_dir), "servers", "add", name,
         "--url", f"https://{name.lower()}.example.org/dicom-web"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(**extra),
    )  # fmt: skip


def _wait_for_pause(child: subprocess.Popen[str], point: str) -> str:
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith(f"ZHIVA-TEST-PAUSED {point}"):
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the child did not pause at {point}: {line!r} {err}")
    return line


def _names(path: Path) -> list[str]:
    return [s["name"] for s in json.loads(path.read_bytes())["servers"]]


@pytest.fixture
def seeded(store: SettingsStore) -> SettingsStore:
    store.load()
    store.update(lambda s: Settings(servers=(server("Old"),)))
    return store


@pytest.mark.parametrize(
    ("point", "expected"), [("before-replace", ["Old"]), ("after-replace", ["Old", "New"])]
)
def test_kill_during_a_save_leaves_the_old_or_the_new_file(
    seeded: SettingsStore, point: str, expected: list[str]
) -> None:
    old = seeded.path.read_bytes()
    child = _cli_add(seeded.path.parent, "New", pause_at=f"{point}:settings.json")
    _wait_for_pause(child, point)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert _names(seeded.path) == expected  # a whole file, old or new, never a mix
    if point == "before-replace":
        assert seeded.path.read_bytes() == old
        assert list(seeded.path.parent.glob(".settings.json.*.tmp"))  # the dead writer's temp
    loaded = SettingsStore(seeded.path).load()
    assert [s.name for s in loaded.settings.servers] == expected
    assert loaded.notices == ()
    assert not list(seeded.path.parent.glob(".settings.json.*.tmp"))  # cleaned under the lock


def test_a_killed_writer_does_not_leave_the_settings_locked(seeded: SettingsStore) -> None:
    child = _cli_add(seeded.path.parent, "New", pause_at="before-replace:settings.json")
    _wait_for_pause(child, "before-replace")
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    impatient = SettingsStore(seeded.path, lock_timeout=0.0)
    impatient.update(lambda s: msgspec.structs.replace(s, servers=(*s.servers, server("Next"))))
    assert _names(seeded.path) == ["Old", "Next"]


def test_a_second_writer_waits_or_gets_a_clear_error_never_clobbers(seeded: SettingsStore) -> None:
    child = _cli_add(seeded.path.parent, "Slow", pause_at="before-replace:settings.json")
    _wait_for_pause(child, "before-replace")  # it holds the lock now, mid-write
    impatient = SettingsStore(seeded.path, lock_timeout=0.0)
    with pytest.raises(SettingsLocked, match="Another Zhiva Viewer is saving"):
        impatient.update(lambda s: s)
    out, err = child.communicate("\n")  # let it finish
    assert child.returncode == 0, err
    assert "Added 'Slow'" in out
    impatient.update(lambda s: msgspec.structs.replace(s, servers=(*s.servers, server("Fast"))))
    assert _names(seeded.path) == ["Old", "Slow", "Fast"]


def test_concurrent_cli_writers_all_land(seeded: SettingsStore) -> None:
    names = ["P1", "P2", "P3", "P4"]
    children = [_cli_add(seeded.path.parent, n) for n in names]
    for child in children:
        _, err = child.communicate()
        assert child.returncode == 0, err
    assert sorted(_names(seeded.path)) == ["Old", *names]
