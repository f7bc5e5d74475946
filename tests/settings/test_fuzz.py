"""Hypothesis against the loader: random bytes and random JSON.

Only our clear error (`SettingsError`) may come out of the decoder, and the store must
never lose a file: whatever bytes were on disk are still on disk after a load, at the
settings path or in an aside copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from net import ServerConfig
from viewer.settings import (
    SCHEMA_VERSION,
    FileSecretStore,
    OrganisationServers,
    ServerRegistry,
    Settings,
    SettingsError,
    SettingsStore,
    decode_server_list,
    decode_settings,
    load_organisation_servers,
    resolve_paths,
)

FIELDS = [f for f in ServerConfig.__struct_fields__]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
#: Documents shaped like settings, so the fuzzing reaches past the first type check.
server_like = st.dictionaries(st.sampled_from([*FIELDS, "extra"]), json_values, max_size=8)
settings_like = st.fixed_dictionaries(
    {},
    optional={
        "schema_version": st.one_of(st.integers(-2, SCHEMA_VERSION + 2), json_values),
        "servers": st.one_of(st.lists(server_like, max_size=4), json_values),
        "selected_server_id": json_values,
        "ui": json_values,
    },
)
documents = st.one_of(json_values, settings_like, st.lists(server_like, max_size=3))
# Enough examples to cover the shapes above; the suite must stay fast (CI runs it often,
# and hypothesis keeps failing examples in its database for the next run).
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _decode_only_clear_errors(data: bytes) -> Settings | None:
    try:
        return decode_settings(data).settings
    except SettingsError as exc:
        assert str(exc)  # a message, not an empty error
        return None


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_give_only_the_clear_error(data: bytes) -> None:
    _decode_only_clear_errors(data)


@FUZZ
@given(documents)
def test_random_json_gives_only_the_clear_error(document: Any) -> None:
    _decode_only_clear_errors(json.dumps(document).encode())


@FUZZ
@given(documents)
def test_random_json_server_lists_give_only_the_clear_error(document: Any) -> None:
    try:
        decode_server_list(json.dumps(document).encode(), source="fuzz", id_namespace="t")
    except SettingsError as exc:
        assert "fuzz" in str(exc)


def _all_file_contents(directory: Path) -> list[bytes]:
    return [p.read_bytes() for p in directory.rglob("*") if p.is_file()]


@FUZZ
@given(st.one_of(st.binary(max_size=200), documents.map(lambda d: json.dumps(d).encode())))
def test_the_store_never_loses_the_bytes_on_disk(tmp_path: Path, data: bytes) -> None:
    directory = tmp_path / "fuzz"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    path = directory / "settings.json"
    path.write_bytes(data)
    loaded = SettingsStore(path, lock_timeout=1.0).load()  # must not raise
    assert isinstance(loaded.settings, Settings)
    assert data in _all_file_contents(directory)
    if not path.exists():  # it was moved aside: the user is told
        assert loaded.notices


# --- what JSON parsers choke on, and the organisation and import paths (issue 13, item 8)

#: Text no encoder writes but a file or a server can hold: non-finite and huge numbers,
#: nesting past any parser's depth, broken encodings.
hostile_texts = st.one_of(
    st.sampled_from(
        [
            b'{"servers": [{"name": "A", "url": "https://a.org", "read_timeout": NaN}]}',
            b'{"servers": [{"name": "A", "url": "https://a.org", "read_timeout": Infinity}]}',
            b'{"servers": [{"name": "A", "url": "https://a.org", "read_timeout": 1e999}]}',
            b'{"schema_version": 1' + b"0" * 5000 + b"}",
            b'{"servers": [{"name": "A", "connect_timeout": -1e308}]}',
            b"[" * 100_000 + b"]" * 100_000,
            b'{"servers": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
            b'\xff\xfe{"servers": []}',
        ]
    ),
    documents.map(lambda d: json.dumps(d, allow_nan=True).encode()),
)


@FUZZ
@given(hostile_texts)
def test_hostile_settings_text_gives_only_the_clear_error(data: bytes) -> None:
    _decode_only_clear_errors(data)


@FUZZ
@given(hostile_texts)
def test_a_hostile_organisation_file_never_stops_the_app(tmp_path: Path, data: bytes) -> None:
    org = tmp_path / "org-servers.json"
    org.write_bytes(data)
    paths = resolve_paths(tmp_path / "config")
    result = load_organisation_servers(paths, env={"ZHIVA_SERVERS_FILE": str(org)}, system_dirs=[])
    assert isinstance(result, OrganisationServers)  # it never raises
    for managed in result.servers:
        assert isinstance(managed.config, ServerConfig)
    assert all(isinstance(n, str) and n for n in result.notices)


@FUZZ
@given(hostile_texts)
def test_a_hostile_import_changes_nothing_or_adds_valid_servers(
    tmp_path: Path, data: bytes
) -> None:
    directory = tmp_path / "import"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    store = SettingsStore(directory / "settings.json", lock_timeout=1.0)
    registry = ServerRegistry(store, FileSecretStore(directory / "secrets.json"))
    registry.load()
    registry.add(ServerConfig(name="Mine", url="https://mine.example.org/rs"))
    before = store.path.read_bytes()
    try:
        report = registry.import_servers(data, source="fuzz.json")
    except SettingsError as exc:
        assert "fuzz.json" in str(exc)
        assert store.path.read_bytes() == before  # all or nothing
        return
    names = [s.name for s in SettingsStore(store.path).load().settings.servers]
    assert names[0] == "Mine" and len(names) == 1 + len(report.added)
    assert len({n.casefold() for n in names}) == len(names)
