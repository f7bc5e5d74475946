"""Secret storage: OS keyring when one works (fakes here, never the real one), else 0600 file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import KeyringLocked, PasswordDeleteError

from viewer.settings import (
    SECRET_KINDS,
    AppPaths,
    FileSecretStore,
    KeyringSecretStore,
    SecretStoreError,
    open_secret_store,
    redact,
)


class MemoryKeyring(KeyringBackend):
    """A keyring that works, in memory."""

    priority = 5

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


class LockedKeyring(MemoryKeyring):
    """A Secret Service whose collection cannot be unlocked (headless sessions)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("the collection is locked")


class ForgetfulKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        return None


class PlaintextLikeKeyring(MemoryKeyring):
    """keyrings.alt's plaintext file has priority 0.5: no better than our own file."""

    priority = 0.5  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        (fail.Keyring(), "no OS keyring is available"),  # type: ignore[no-untyped-call]
        (LockedKeyring(), "failed a test: KeyringLocked"),
        (ForgetfulKeyring(), "did not return what was stored"),
        (PlaintextLikeKeyring(), "no OS keyring is available"),
    ],
)
def test_no_working_keyring_falls_back_to_the_file_with_a_note(
    paths: AppPaths, backend: KeyringBackend, reason: str
) -> None:
    store = open_secret_store(paths, backend="auto", keyring_backend=backend)
    assert isinstance(store, FileSecretStore)
    assert store.note is not None and reason in store.note and "readable only by your" in store.note
    assert str(paths.secrets_file) in store.description


def test_a_working_keyring_is_used_and_left_clean(paths: AppPaths) -> None:
    backend = MemoryKeyring()
    store = open_secret_store(paths, backend="auto", keyring_backend=backend)
    assert isinstance(store, KeyringSecretStore)
    assert store.note is None and "OS keyring" in store.description
    assert backend.entries == {}  # the probe entry was deleted
    store.set("srv", "password", "pw-1234")
    assert store.get("srv", "password") == "pw-1234"
    assert not paths.secrets_file.exists()  # never in a file when the keyring works
    store.delete_server("srv")
    assert backend.entries == {}


def test_portable_dirs_get_their_own_keyring_namespace(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    one = open_secret_store(
        AppPaths(tmp_path / "a", tmp_path, tmp_path, portable=True), keyring_backend=backend
    )
    two = open_secret_store(
        AppPaths(tmp_path / "b", tmp_path, tmp_path, portable=True), keyring_backend=backend
    )
    one.set("zhiva-local-server", "password", "first-pw")
    assert two.get("zhiva-local-server", "password") is None


def test_forcing_the_keyring_without_one_is_an_error(paths: AppPaths) -> None:
    with pytest.raises(SecretStoreError, match="Cannot use the OS keyring"):
        open_secret_store(
            paths,
            backend="keyring",
            keyring_backend=fail.Keyring(),  # type: ignore[no-untyped-call]
        )


def test_env_var_forces_the_file(paths: AppPaths) -> None:
    store = open_secret_store(
        paths, keyring_backend=MemoryKeyring(), env={"ZHIVA_SECRET_STORE": "file"}
    )
    assert isinstance(store, FileSecretStore)
    with pytest.raises(SecretStoreError, match="auto, keyring or file"):
        open_secret_store(paths, env={"ZHIVA_SECRET_STORE": "vault"})


def test_file_store_round_trip_and_mode(secrets: FileSecretStore) -> None:
    secrets.set("a", "password", "pa55word")
    secrets.set("a", "refresh_token", "refresh-abc")
    secrets.set("b", "token", "tok-xyz")
    assert secrets.get("a", "password") == "pa55word"
    assert secrets.get("a", "access_token") is None
    assert stat.S_IMODE(secrets.path.stat().st_mode) == 0o600
    secrets.delete("a", "password")
    assert (
        secrets.get("a", "password") is None and secrets.get("a", "refresh_token") == "refresh-abc"
    )
    secrets.delete_server("a")
    assert json.loads(secrets.path.read_bytes())["secrets"] == {"b": {"token": "tok-xyz"}}


def test_file_store_tightens_a_loose_mode(secrets: FileSecretStore) -> None:
    secrets.set("a", "password", "pa55word")
    os.chmod(secrets.path, 0o644)
    assert secrets.get("a", "password") == "pa55word"
    assert stat.S_IMODE(secrets.path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="symbolic links and modes are POSIX here")
def test_a_symlinked_secrets_file_is_refused_and_its_target_left_alone(
    secrets: FileSecretStore, tmp_path: Path
) -> None:
    # Another user (or a program) points secrets.json at a file of theirs: we must not
    # chmod it, read it as ours, or write our passwords into it.
    target = tmp_path / "elsewhere.json"
    target.write_text('{"format": "zhiva-viewer/secrets", "secrets": {}}')
    os.chmod(target, 0o644)
    secrets.path.parent.mkdir(parents=True, exist_ok=True)
    secrets.path.symlink_to(target)
    for call in (
        lambda: secrets.get("a", "password"),
        lambda: secrets.set("a", "password", "pa55word"),
        lambda: secrets.delete_server("a"),
    ):
        with pytest.raises(SecretStoreError, match="symbolic link") as caught:
            call()
        assert str(secrets.path) in str(caught.value)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert "pa55word" not in target.read_text()
    assert secrets.path.is_symlink()


@pytest.mark.skipif(os.name != "posix", reason="FIFOs are POSIX")
def test_a_secrets_path_that_is_not_a_file_is_refused(secrets: FileSecretStore) -> None:
    secrets.path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(secrets.path)  # opening it for reading would block forever
    with pytest.raises(SecretStoreError, match="not a regular file"):
        secrets.get("a", "password")


def test_a_corrupt_secrets_file_is_kept_aside(secrets: FileSecretStore) -> None:
    secrets.path.parent.mkdir(parents=True, exist_ok=True)
    secrets.path.write_bytes(b"{broken")
    assert secrets.get("a", "password") is None
    secrets.set("a", "password", "new-pass")
    (aside,) = secrets.path.parent.glob("secrets.json.corrupt-*")
    assert aside.read_bytes() == b"{broken"
    assert secrets.get("a", "password") == "new-pass"


def test_secrets_are_registered_for_redaction(secrets: FileSecretStore) -> None:
    secrets.set("a", "password", "correct horse battery")
    assert redact("login with correct horse battery") == "login with [REDACTED]"
    fresh = FileSecretStore(secrets.path)
    secrets.path.chmod(0o600)
    assert fresh.get("a", "password") == "correct horse battery"


def test_unknown_kinds_are_refused(secrets: FileSecretStore) -> None:
    with pytest.raises(ValueError):
        secrets.set("a", "cookie", "x")  # type: ignore[arg-type]
    assert set(SECRET_KINDS) == {
        "password",
        "token",
        "access_token",
        "refresh_token",
        "refresh_origin",
    }


def test_the_refresh_origin_is_kept_but_not_redacted_from_logs(secrets: FileSecretStore) -> None:
    # It is the site's address, in many useful log lines: not a secret, only kept with one.
    secrets.set("a", "refresh_origin", "https://pacs.example.org")
    assert secrets.get("a", "refresh_origin") == "https://pacs.example.org"
    assert redact("GET https://pacs.example.org/rs") == "GET https://pacs.example.org/rs"
    secrets.delete_server("a")
    assert secrets.get("a", "refresh_origin") is None
