"""ServerRegistry: the merge rules of user, managed and preset servers, and each operation."""

from __future__ import annotations

import json
from collections.abc import Callable

import msgspec
import pytest

from net import ServerConfig
from viewer.settings import (
    LOCAL_SERVER_PRESET_ID,
    AmbiguousServer,
    DuplicateServer,
    FileSecretStore,
    InvalidServer,
    ManagedServer,
    ServerNotFound,
    ServerRegistry,
    SettingsConflict,
    SettingsStore,
    decode_server_list,
    encode_server_list,
    load_presets,
)

from .conftest import server

MakeRegistry = Callable[..., ServerRegistry]


def _saved(store: SettingsStore) -> list[str]:
    return [s.name for s in SettingsStore(store.path).load().settings.servers]


def test_first_launch_offers_the_preset_but_selects_nothing(make_registry: MakeRegistry) -> None:
    registry = make_registry()
    assert registry.first_launch
    assert registry.selected() is None
    (entry,) = registry.entries()
    assert (entry.kind, entry.id, entry.name) == ("preset", LOCAL_SERVER_PRESET_ID, "Local Server")
    assert not registry.store.path.exists()  # offering writes nothing


def test_the_local_server_preset_has_the_zhiva_local_pacs_values() -> None:
    (preset,) = load_presets()
    assert preset.id == LOCAL_SERVER_PRESET_ID
    assert preset.url == "https://localhost/zhiva/pacs"
    assert preset.wado_uri_postfix == "/zhiva/wado"
    assert (preset.postfix, preset.qido_postfix, preset.wado_postfix) == ("", "", "")
    assert preset.image_rendering == "wadors"


def test_selecting_the_preset_saves_it(make_registry: MakeRegistry, store: SettingsStore) -> None:
    registry = make_registry()
    registry.select("local server")  # names match case-insensitively
    assert registry.selected() is not None and registry.selected().kind == "user"  # type: ignore[union-attr]
    reloaded = SettingsStore(store.path).load().settings
    assert reloaded.selected_server_id == LOCAL_SERVER_PRESET_ID
    assert [s.id for s in reloaded.servers] == [LOCAL_SERVER_PRESET_ID]
    assert [e.kind for e in registry.entries()] == ["user"]  # no longer offered twice
    registry.select("Local Server")
    assert [s.id for s in SettingsStore(store.path).load().settings.servers] == [
        LOCAL_SERVER_PRESET_ID
    ]


def test_editing_the_preset_saves_a_changed_copy_under_its_id(make_registry: MakeRegistry) -> None:
    registry = make_registry()
    edited = registry.edit("Local Server", {"url": "https://192.168.1.20/zhiva/pacs"})
    assert edited.id == LOCAL_SERVER_PRESET_ID and edited.wado_uri_postfix == "/zhiva/wado"
    assert registry.selected() is None  # editing is not selecting
    registry.remove("Local Server")
    assert [e.kind for e in registry.entries()] == ["preset"]  # offered again
    with pytest.raises(ServerNotFound, match="preset"):
        registry.remove("Local Server")


def test_add_validates_exactly_like_the_form(
    make_registry: MakeRegistry, store: SettingsStore
) -> None:
    registry = make_registry(presets=())
    bad = ServerConfig(name=" ", url="http://pacs", auth_type="basic", uuid="nope", read_timeout=0)
    with pytest.raises(InvalidServer) as info:
        registry.add(bad)
    assert set(info.value.errors) == {"name", "url", "username", "uuid", "read_timeout"}
    assert not store.path.exists()


def test_names_are_unique_among_everything_shown(make_registry: MakeRegistry) -> None:
    registry = make_registry(server("Hospital", id="org1"))
    with pytest.raises(InvalidServer) as info:
        registry.add(server("hospital "))
    assert "already exists (managed)" in info.value.errors["name"]
    with pytest.raises(InvalidServer):
        registry.add(server("LOCAL SERVER"))  # the preset's name is taken too
    registry.add(server("Mine"))
    with pytest.raises(DuplicateServer):
        registry.add(server("Other", id=registry.find("Mine").id))


def test_managed_servers_are_read_only_but_can_be_copied(
    make_registry: MakeRegistry, store: SettingsStore
) -> None:
    registry = make_registry(server("Hospital", id="org1", username="x"))
    entry = registry.find("Hospital")
    assert entry.kind == "managed" and entry.read_only
    with pytest.raises(ManagedServer, match="managed by your organisation"):
        registry.edit("Hospital", {"url": "https://evil.org"})
    with pytest.raises(ManagedServer):
        registry.remove("Hospital")
    copy = registry.copy("Hospital")
    assert copy.name == "Hospital (copy)" and copy.id != "org1" and copy.username == "x"
    assert registry.copy("Hospital").name == "Hospital (copy 2)"
    registry.edit("Hospital (copy)", {"url": "https://mine.org"})
    assert _saved(store) == ["Hospital (copy)", "Hospital (copy 2)"]
    assert "org1" not in store.path.read_text()  # managed servers never enter the user file


def test_managed_servers_can_be_selected(make_registry: MakeRegistry, store: SettingsStore) -> None:
    registry = make_registry(server("Hospital", id="org1"))
    registry.select("Hospital")
    saved = SettingsStore(store.path).load().settings
    assert saved.selected_server_id == "org1" and saved.servers == ()


def test_rule1_a_managed_entry_reusing_your_servers_id_never_gets_its_secrets(
    make_registry: MakeRegistry, store: SettingsStore, secrets: FileSecretStore
) -> None:
    # An organisation list (fetched from a URL, or a file anyone with admin rights
    # wrote) that names your server's id and its own URL must not be handed your
    # password or session along with the id.
    registry = make_registry(presets=())
    registry.add(server("My PACS", id="shared"), password="kept-password")
    registry.secrets.set("shared", "refresh_token", "my-refresh-token")
    org = server("Org PACS", id="shared", url="https://elsewhere.example.org/rs")
    registry = make_registry(org, presets=())
    entries = {e.name: e for e in registry.entries()}
    assert sorted((e.name, e.kind) for e in entries.values()) == [
        ("My PACS", "user"),
        ("Org PACS", "managed"),
    ]
    managed = entries["Org PACS"]
    assert managed.id != "shared" and managed.config.url == org.url
    assert registry.secrets.get(managed.id, "password") is None
    assert registry.secrets.get(managed.id, "refresh_token") is None
    assert entries["My PACS"].id == "shared"
    assert registry.find("shared").name == "My PACS"
    notice = next(n for n in registry.notices if "same id" in n)
    assert "My PACS" in notice and "Org PACS" in notice and "separately" in notice
    assert secrets.get("shared", "password") == "kept-password"  # yours, untouched
    # The managed entry's id is stable across starts (its secrets must survive them).
    assert make_registry(org, presets=()).find("Org PACS").id == managed.id
    registry.remove("My PACS")  # your server and its secrets go; the organisation's stays
    assert secrets.get("shared", "password") is None
    assert [e.kind for e in registry.entries()] == ["managed"]
    assert not any("same id" in n for n in registry.notices)


def test_rule2_same_name_different_ids_needs_the_id(make_registry: MakeRegistry) -> None:
    registry = make_registry(presets=())
    mine = registry.add(server("PACS", id="mine"))
    registry = make_registry(server("PACS", id="theirs"), presets=())
    assert sorted(e.kind for e in registry.entries()) == ["managed", "user"]
    with pytest.raises(AmbiguousServer, match=r"mine.*theirs|theirs.*mine"):
        registry.find("PACS")
    assert registry.find("theirs").kind == "managed"
    registry.edit("PACS", {"url": "https://new.org"})  # edit can only mean the user's
    assert registry.find(mine.id).config.url == "https://new.org"


def test_rule4_a_vanished_managed_selection_is_kept_for_later(
    make_registry: MakeRegistry, store: SettingsStore
) -> None:
    make_registry(server("Hospital", id="org1")).select("Hospital")
    offline = make_registry()
    assert offline.selected() is None
    assert any("no longer offered" in n for n in offline.notices)
    assert SettingsStore(store.path).load().settings.selected_server_id == "org1"
    assert make_registry(server("Hospital", id="org1")).selected() is not None


def test_remove_deletes_secrets_and_the_selection(
    make_registry: MakeRegistry, secrets: FileSecretStore, store: SettingsStore
) -> None:
    registry = make_registry(presets=())
    config = registry.add(server("PACS", auth_type="basic", username="u"), password="pw-1234")
    secrets.set(config.id, "refresh_token", "refresh-1234")
    registry.select("PACS")
    registry.remove("PACS")
    assert secrets.get(config.id, "password") is None
    assert secrets.get(config.id, "refresh_token") is None
    assert SettingsStore(store.path).load().settings.selected_server_id is None
    with pytest.raises(ServerNotFound):
        registry.remove("PACS")


def test_secrets_never_reach_the_settings_or_the_export(
    make_registry: MakeRegistry, store: SettingsStore
) -> None:
    registry = make_registry(presets=())
    registry.add(server("PACS", auth_type="basic", username="u"), password="pw-Secret-1")
    registry.add(server("Tok", auth_type="token"), token="eyJ.token.value")
    assert "pw-Secret-1" not in store.path.read_text()
    exported = registry.export_servers().decode()
    assert "pw-Secret-1" not in exported and "eyJ.token.value" not in exported
    assert [
        s.name for s in decode_server_list(exported.encode(), source="x", id_namespace="x").servers
    ] == ["PACS", "Tok"]


def test_edit_with_expected_detects_a_concurrent_change(
    make_registry: MakeRegistry, store: SettingsStore, secrets: FileSecretStore
) -> None:
    mine = make_registry(presets=())
    original = mine.add(server("PACS"))
    other = ServerRegistry(SettingsStore(store.path), secrets)
    other.load()
    other.edit("PACS", {"url": "https://changed-elsewhere.org"})
    with pytest.raises(SettingsConflict, match="changed by another Zhiva Viewer"):
        mine.edit("PACS", {"url": "https://mine.org"}, expected=original)
    # changes to different servers merge
    other.add(server("Second"))
    mine.edit("PACS", {"postfix": "aets/DCM"})
    saved = {s.name: s for s in SettingsStore(store.path).load().settings.servers}
    assert (
        saved["PACS"].url == "https://changed-elsewhere.org" and saved["PACS"].postfix == "aets/DCM"
    )
    assert "Second" in saved


def test_rule5_import_never_changes_an_existing_server(
    make_registry: MakeRegistry, store: SettingsStore
) -> None:
    registry = make_registry(server("Org", id="org1"), presets=())
    existing = registry.add(server("PACS", id="p1"))
    incoming = [
        existing,  # identical: skipped
        msgspec.structs.replace(existing, url="https://other.org"),  # taken id, different
        server("Org", id="org1"),  # a managed id and name
        server("New", id="n1", ca_file="/nonexistent/ca.pem"),
    ]
    report = registry.import_servers(encode_server_list(incoming), source="list.json")
    assert report.skipped == ("PACS",)
    assert [c.name for c in report.added] == ["PACS (2)", "Org (2)", "New"]
    added = {c.name: c for c in report.added}
    assert added["PACS (2)"].id != "p1" and added["Org (2)"].id != "org1"
    assert added["New"].id == "n1"
    assert any("ca_file" in w for w in report.warnings)  # imported, to be fixed in the form
    saved = {s.name: s for s in SettingsStore(store.path).load().settings.servers}
    assert saved["PACS"] == existing
    # importing the same file again adds nothing new
    again = registry.import_servers(encode_server_list(incoming), source="list.json")
    assert "New" in again.skipped


def test_import_of_many_repeated_names_is_linear(
    make_registry: MakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20k entries with one name took 29 s: each repeat tried " (2)", " (3)", ... from 2.
    from viewer.settings import _registry

    registry = make_registry(presets=())
    registry.add(server("Dup (5)", url="https://dup5.example.org/rs"))  # taken: skipped
    count = 3000
    calls = 0
    key = _registry._key

    def counting_key(name: str) -> str:
        nonlocal calls
        calls += 1
        return key(name)

    monkeypatch.setattr(_registry, "_key", counting_key)
    listed = [server("Dup", id=f"d{i}", url="https://dup.example.org/rs") for i in range(count)]
    report = registry.import_servers(encode_server_list(listed), source="many.json")
    names = [c.name for c in report.added]
    assert names[:5] == ["Dup", "Dup (2)", "Dup (3)", "Dup (4)", "Dup (6)"]
    assert len(set(names)) == count and "Dup (5)" not in names
    # A quadratic search makes ~count**2 / 2 (4.5 million) name comparisons here.
    assert calls < 10 * count, calls


def test_import_is_all_or_nothing(make_registry: MakeRegistry, store: SettingsStore) -> None:
    registry = make_registry(presets=())
    registry.add(server("PACS"))
    before = store.path.read_bytes()
    bad = json.dumps(
        {"servers": [{"name": "Good", "url": "https://g.org"}, {"name": "Bad", "auth_type": "x"}]}
    )
    with pytest.raises(Exception, match=r"server #2 \('Bad'\)"):
        registry.import_servers(bad.encode(), source="bad.json")
    assert store.path.read_bytes() == before


def test_export_then_import_elsewhere_round_trips(make_registry: MakeRegistry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    registry = make_registry(presets=())
    registry.add(server("A", postfix="aets/X", qido_postfix="rs", fuzzy_matching=True))
    registry.add(server("B", auth_type="basic", username="bob"))
    data = registry.export_servers()
    other = ServerRegistry(
        SettingsStore(tmp_path / "elsewhere" / "settings.json"),
        FileSecretStore(tmp_path / "s.json"),
    )
    other.load()
    report = other.import_servers(data, source="export")
    assert list(report.added) == list(registry.settings.servers)
