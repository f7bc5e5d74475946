"""Connecting to the selected server through the real app: a connection that another
choice superseded while it was being made is closed, not leaked.

The connect task is held inside the app's own `_connect` (a gate the test opens), so
the second choice is made while the first connection is still being set up, whatever
the machine's speed. No server is contacted: making a client sends nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from net import DicomWebClient, ServerConfig
from tests.gui.driver import Driver
from viewer.app import main
from viewer.settings import ServerRegistry, resolve_paths

MakeApp = Callable[..., Driver]


def test_clients_of_a_connection_superseded_while_it_was_made_are_closed(
    make_app: MakeApp, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fuzzy matching: the connection makes two clients (fuzzy and plain searches).
    first = ServerConfig(
        name="First PACS", url="https://first.invalid/dicom-web", fuzzy_matching=True
    )
    second = ServerConfig(name="Second PACS", url="https://second.invalid/dicom-web")
    registry = ServerRegistry.open(resolve_paths(isolated_env), fetch_organisation=False)
    registry.add(first)
    registry.add(second)
    registry.select(first.id)

    gate, held = threading.Event(), threading.Event()
    made: dict[str, tuple[DicomWebClient, ...]] = {}
    connect = main._connect

    def held_connect(
        registry: ServerRegistry, config: ServerConfig
    ) -> tuple[DicomWebClient, DicomWebClient]:
        clients = connect(registry, config)
        made[config.name] = clients
        if config.id == first.id:
            held.set()
            gate.wait(30)
        return clients

    monkeypatch.setattr(main, "_connect", held_connect)
    ui = make_app()
    app = ui.app
    app.state.navigate("studies")  # the study list connects to the selected server
    ui.frames_until(held.is_set, what="the first connection to be under way")
    assert app.registry is not None
    app.registry.select(second.id)
    app.connect_server()
    ui.frames_until(
        lambda: app.server_config is not None and app.server_config.id == second.id,
        what="the second connection",
    )
    superseded = made[first.name]
    assert len({id(c) for c in superseded}) == 2
    assert not any(c.closed for c in superseded)  # still being made: nothing to close yet
    gate.set()
    ui.frames_until(lambda: all(c.closed for c in superseded), what="the first clients closed")
    assert not any(c in app._clients for c in superseded)
    current = made[second.name]
    assert app.server_client is current[0] and not current[0].closed
    ui.frames(3)
    assert app.server_config.id == second.id  # the late answer changed nothing
