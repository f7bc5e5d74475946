"""The settings document: round trips, forward compatibility, every migration."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from net import ServerConfig
from viewer.settings import (
    MIGRATIONS,
    SCHEMA_VERSION,
    CacheSettings,
    CorruptSettings,
    NewerSettings,
    Settings,
    decode_settings,
    encode_settings,
)
from viewer.settings._schema import derive_server_id

from .conftest import server


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_round_trip_keeps_every_field() -> None:
    settings = Settings(
        servers=(
            server("A", auth_type="basic", username="u", can_store=True, read_timeout=5.5),
            server("B", uuid="0b5d3c4e-8f2a-4c61-9a4e-1f0e2d3c4b5a", wado_uri_postfix="/w"),
        ),
        selected_server_id=None,
    )
    decoded = decode_settings(encode_settings(settings))
    assert decoded.settings == settings
    assert decoded.version == SCHEMA_VERSION
    assert not decoded.migrated


def test_file_is_readable_json_with_version_first() -> None:
    data = encode_settings(Settings(servers=(server("A"),), selected_server_id="x"))
    assert data.startswith(b'{\n  "schema_version": ' + str(SCHEMA_VERSION).encode())
    document = json.loads(data)
    assert document["selected_server_id"] == "x"
    assert document["servers"][0]["name"] == "A"


def test_selection_is_none_until_saved() -> None:
    document = json.loads(encode_settings(Settings()))
    assert document["selected_server_id"] is None
    assert decode_settings(_json({"schema_version": 1})).settings.selected_server_id is None


def test_unknown_fields_survive_a_save() -> None:
    """A later section (``ui``) and a later server field survive an older version's save."""
    original = {
        "schema_version": SCHEMA_VERSION,
        "ui": {"theme": "dark", "zoom": 1.5},
        "servers": [
            {"id": "a1", "name": "A", "url": "https://a.example.org", "colour": "red"},
            {"id": "b2", "name": "B", "url": "https://b.example.org"},
        ],
        "selected_server_id": "a1",
    }
    decoded = decode_settings(_json(original))
    changed = msgspec.structs.replace(
        decoded.settings,
        servers=(msgspec.structs.replace(decoded.settings.servers[0], name="A2"),),
    )
    document = json.loads(encode_settings(changed, decoded.raw))
    assert document["ui"] == {"theme": "dark", "zoom": 1.5}
    assert document["servers"][0]["colour"] == "red"
    assert document["servers"][0]["name"] == "A2"
    assert [s["id"] for s in document["servers"]] == ["a1"]  # a removed server's extras go


#: One sample document per schema version that has a migration: a test below fails when
#: a migration is added without a sample, so every migration is exercised.
SAMPLES: dict[int, list[tuple[bytes, Settings]]] = {
    0: [
        # A hand-written file: no schema_version, a bare list of servers.
        (
            _json([{"id": "s1", "name": "PACS", "url": "https://pacs.example.org"}]),
            Settings(servers=(ServerConfig(id="s1", name="PACS", url="https://pacs.example.org"),)),
        ),
        # A hand-written object without schema_version, with a selection.
        (
            _json(
                {
                    "servers": [{"id": "s1", "name": "PACS", "url": "https://pacs.example.org"}],
                    "selected_server_id": "s1",
                }
            ),
            Settings(
                servers=(ServerConfig(id="s1", name="PACS", url="https://pacs.example.org"),),
                selected_server_id="s1",
            ),
        ),
    ],
    1: [
        # Version 1 had no cache section: the budgets it used become the saved ones.
        (
            _json(
                {
                    "schema_version": 1,
                    "servers": [{"id": "s1", "name": "PACS", "url": "https://pacs.example.org"}],
                    "selected_server_id": "s1",
                }
            ),
            Settings(
                servers=(ServerConfig(id="s1", name="PACS", url="https://pacs.example.org"),),
                selected_server_id="s1",
                cache=CacheSettings(memory_mib=1024, disk_mib=4096),
            ),
        ),
    ],
}


def test_cache_budgets_round_trip_and_bad_ones_never_cost_the_servers() -> None:
    saved = Settings(cache=CacheSettings(memory_mib=2048, disk_mib=0))
    decoded = decode_settings(encode_settings(saved))
    assert decoded.settings.cache == CacheSettings(memory_mib=2048, disk_mib=0)
    assert decoded.settings.cache.disk_budget == 0
    assert decoded.settings.cache.memory_budget == 2048 * 1024**2
    # Hand-edited: out of range is clamped where used, the wrong type falls back.
    odd = CacheSettings(memory_mib=1, disk_mib=-5)
    assert odd.memory_budget == 64 * 1024**2 and odd.disk_budget == 0
    document = {
        "schema_version": SCHEMA_VERSION,
        "servers": [{"id": "a1", "name": "A", "url": "https://a.example.org"}],
        "cache": {"memory_mib": "lots"},
    }
    decoded = decode_settings(_json(document))
    assert decoded.settings.cache == CacheSettings()
    assert [s.id for s in decoded.settings.servers] == ["a1"]
    assert any("cache settings" in note for note in decoded.notes)


def test_every_migration_has_a_sample() -> None:
    assert set(SAMPLES) == set(MIGRATIONS) == set(range(SCHEMA_VERSION))


@pytest.mark.parametrize(
    ("data", "expected"),
    [sample for version in sorted(SAMPLES) for sample in SAMPLES[version]],
)
def test_migrations_reach_the_current_schema(data: bytes, expected: Settings) -> None:
    decoded = decode_settings(data)
    assert decoded.migrated
    assert decoded.settings == expected
    assert decoded.raw["schema_version"] == SCHEMA_VERSION
    # and the migrated document is a current one: it round-trips unchanged
    again = decode_settings(encode_settings(decoded.settings, decoded.raw))
    assert again.settings == expected and not again.migrated


def test_a_failing_migration_is_a_clear_error() -> None:
    def broken(raw: Any) -> dict[str, Any]:
        raise KeyError("servers")

    with pytest.raises(CorruptSettings, match="from schema 1 to 2 failed: KeyError"):
        decode_settings(_json({"schema_version": 1}), migrations={1: broken}, current=2)


def test_a_missing_migration_is_a_clear_error() -> None:
    with pytest.raises(CorruptSettings, match="No migration from settings schema 1 to 2"):
        decode_settings(_json({"schema_version": 1}), migrations={}, current=2)


def test_a_chain_of_migrations_runs_in_order() -> None:
    def one_to_two(raw: Any) -> dict[str, Any]:
        raw["servers"] = [dict(s, name=s["name"].upper()) for s in raw["servers"]]
        return dict(raw)

    def two_to_three(raw: Any) -> dict[str, Any]:
        assert raw["schema_version"] == 2
        return dict(raw, ui={"theme": "dark"})

    data = _json(
        {"schema_version": 1, "servers": [{"id": "a", "name": "a", "url": "https://a.org"}]}
    )
    decoded = decode_settings(data, migrations={1: one_to_two, 2: two_to_three}, current=3)
    assert decoded.settings.servers[0].name == "A"
    assert decoded.raw["ui"] == {"theme": "dark"} and decoded.raw["schema_version"] == 3


def test_a_newer_file_is_read_leniently() -> None:
    data = _json(
        {
            "schema_version": SCHEMA_VERSION + 1,
            "servers": [
                {"id": "a", "name": "A", "url": "https://a.org", "new_field": 1},
                {"id": "b", "name": "B", "url": "https://b.org", "auth_type": "kerberos"},
            ],
            "selected_server_id": "a",
        }
    )
    decoded = decode_settings(data)
    assert decoded.newer
    assert [s.id for s in decoded.settings.servers] == ["a"]  # the unknown auth type is skipped
    assert decoded.settings.selected_server_id == "a"
    assert any("skipped" in note for note in decoded.notes)


def test_a_newer_file_that_cannot_be_read_is_newer_not_corrupt() -> None:
    with pytest.raises(NewerSettings) as info:
        decode_settings(_json({"schema_version": 99, "servers": {"a": 1}}))
    assert info.value.version == 99
    assert not isinstance(info.value, CorruptSettings)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"schema_version": True}, "whole number"),
        ({"schema_version": "1"}, "whole number"),
        ({"schema_version": -1}, "whole number"),
        ({"schema_version": 1, "servers": {}}, "must be a list"),
        ({"schema_version": 1, "servers": [{"name": 3}]}, r"Server #1 .*\$\.name"),
        ({"schema_version": 1, "servers": [{"auth_type": "kerberos"}]}, "auth_type"),
        ({"schema_version": 1, "selected_server_id": 5}, "selected_server_id"),
        ("a string", "not an object"),
    ],
)
def test_bad_documents_are_corrupt_settings(document: Any, message: str) -> None:
    with pytest.raises(CorruptSettings, match=message):
        decode_settings(_json(document))


def test_bad_bytes_are_corrupt_settings() -> None:
    for data in (b"", b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(CorruptSettings):
            decode_settings(data)


def test_servers_without_ids_get_stable_derived_ids() -> None:
    data = _json({"schema_version": 1, "servers": [{"name": "PACS", "url": "https://p.org"}]})
    first = decode_settings(data).settings.servers[0].id
    assert first == decode_settings(data).settings.servers[0].id  # not random per load
    assert first == derive_server_id("settings", "PACS")


def test_repeated_ids_are_split_so_both_servers_survive() -> None:
    entry = {"id": "same", "name": "A", "url": "https://a.org"}
    decoded = decode_settings(
        _json({"schema_version": 1, "servers": [entry, dict(entry, name="B")]})
    )
    ids = [s.id for s in decoded.settings.servers]
    assert ids[0] == "same" and ids[1] != "same" and len(set(ids)) == 2
    assert any("repeated the id" in note for note in decoded.notes)
