"""Fixtures for the app tests: an isolated config dir, and a real window under Xvfb.

Every test here runs with its own ``ZHIVA_CONFIG_DIR``, file secrets (never the real
keyring) and no organisation lists, as tests/settings does. Model tests need nothing
else. GUI tests take `gui`: one dearpygui context for the whole session (DESIGN.md §6),
on the display in ``DISPLAY`` or, when there is none (CI runs plain pytest), on an Xvfb
this fixture starts on a free display number and stops at the end. Each test builds
its own `App` on that context (`make_app`) and deletes its windows afterwards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from net import ServerConfig
from tests.gui.driver import Driver
from tests.support.pacs import TestPacs
from tests.support.xvfb import SCREEN as XVFB_SCREEN
from tests.support.xvfb import XvfbError, start_xvfb
from viewer.settings import ServerRegistry, forget_secrets, resolve_paths


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One user cache dir for the session: the demo study is generated once, not per test."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def session_demo(cache_home: Path) -> Path:
    """The demo study, generated once for the session (it is the same every time)."""
    from viewer.demo import ensure_demo_study

    root = cache_home / "demo"
    ensure_demo_study(root)
    return root


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_home: Path, session_demo: Path
) -> Iterator[Path]:
    config_dir = tmp_path / "config"
    # The app keeps the demo under --config-dir: this one's is the session's copy.
    (config_dir / "cache").mkdir(parents=True)
    (config_dir / "cache" / "demo").symlink_to(session_demo, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setenv("ZHIVA_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("ZHIVA_SECRET_STORE", "file")
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    for name in ("ZHIVA_SERVERS_FILE", "ZHIVA_SERVERS_URL", "ZHIVA_SERVERS_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ZHIVA_UI_SCALE", raising=False)
    yield config_dir
    forget_secrets()


def _start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    try:
        return start_xvfb(XVFB_SCREEN)
    except XvfbError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def xdisplay() -> Iterator[str]:
    """An X display for the session: the caller's, or a private Xvfb."""
    from viewer.app.display import NoDisplay, check_display

    try:
        yield check_display().name
        return
    except NoDisplay:
        pass
    process, name = _start_xvfb()
    try:
        yield name
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def gui(xdisplay: str) -> Iterator[object]:
    """The session's one dearpygui context and viewport (destroyed before Xvfb stops)."""
    import dataclasses

    from viewer.app import main
    from viewer.app.display import check_display

    # DISPLAY is set only while GLFW connects: left set, it would make the CLI tests
    # of other packages (which expect no display) open this window and never return.
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = xdisplay
    try:
        # Scale 1 whatever the desktop says, so pixel positions are the same everywhere.
        display = dataclasses.replace(check_display(), scale=1.0)
        created = main.ensure_gui(display, vsync=False)
    finally:
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous
    yield created
    main._destroy_gui()


@pytest.fixture
def make_app(gui: object, xdisplay: str, isolated_env: Path) -> Iterator[Callable[..., Driver]]:
    """Start an `App` on the session's window and wait for its Servers page.

    Calling it again closes the previous app first: that is a restart with the same
    settings directory.
    """
    from viewer.app.main import App, Gui

    assert isinstance(gui, Gui)
    drivers: list[Driver] = []

    def make(**kwargs: object) -> Driver:
        while drivers:
            drivers.pop().app.close()
        kwargs.setdefault("config_dir", str(isolated_env))
        kwargs.setdefault("open_browser", lambda url: None)
        app = App(gui, **kwargs)  # type: ignore[arg-type]
        app.start()
        driver = Driver(app, display=xdisplay)
        drivers.append(driver)
        # The pointer is wherever the last test left it: over a toolbar button it would
        # show that button's tooltip over the next test's image.
        driver.park_mouse()
        driver.frames_until(lambda: app.servers_page is not None, what="the Servers page")
        if not any(kwargs.get(k) for k in ("link", "demo", "paths")):
            # With a link the app navigates by itself (to the study list once signed in);
            # navigating here would race with it. The demo opens on the Viewer page,
            # paths on the study list or the Viewer.
            app.state.navigate("settings")
        driver.frames(3)
        return driver

    yield make
    while drivers:
        drivers.pop().app.close()


@pytest.fixture
def select_pacs(
    isolated_env: Path, pacs: TestPacs, pacs_server_config: ServerConfig
) -> Callable[..., ServerConfig]:
    """Save the test PACS (with `changes` to its config) as the selected server, with
    its password, in the settings the next `make_app` opens."""

    def select(**changes: object) -> ServerConfig:
        config = msgspec.structs.replace(pacs_server_config, **changes)
        registry = ServerRegistry.open(resolve_paths(isolated_env), fetch_organisation=False)
        registry.add(config)
        registry.select(config.id)
        registry.secrets.set(config.id, "password", pacs.users["zhiva-admin"])
        return config

    return select
