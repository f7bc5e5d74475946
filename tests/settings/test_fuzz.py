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
    Settings,
    SettingsError,
    SettingsStore,
    decode_server_list,
    decode_settings,
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
