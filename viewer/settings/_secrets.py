"""Secret storage: passwords and tokens keyed by server id, never in the settings JSON.

`open_secret_store` picks the OS keyring (through `keyring`) when one really works —
checked with a set/get/delete round trip of a probe entry, since on a headless Linux box
keyring may offer only its "fail" backend, an empty chainer, or a Secret Service that
cannot be unlocked. Otherwise secrets go to ``secrets.json`` in the config dir, created
with mode 0600 (readable only by the user), and `SecretStore.note` says so, for the UI
and the CLI to show. ``ZHIVA_SECRET_STORE=file|keyring|auto`` forces a choice; tests
force ``file`` so they never touch the real keyring.

Every secret read or written is registered with the log redaction filter.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import hashlib
import logging
import os
import secrets as _random
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ._atomic import FileLock, atomic_write, move_aside, remove_stale_temp_files
from ._errors import SecretStoreError
from ._logging import register_secret
from ._paths import AppPaths

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "ENV_SECRET_STORE",
    "SECRET_KINDS",
    "FileSecretStore",
    "KeyringSecretStore",
    "SecretKind",
    "SecretStore",
    "keyring_problem",
    "open_secret_store",
]

log = logging.getLogger("viewer.settings.secrets")

ENV_SECRET_STORE = "ZHIVA_SECRET_STORE"
#: ``refresh_origin`` is not a secret but belongs to one: the site that issued the
#: refresh token, kept beside it so the two are written and deleted together.
SecretKind = Literal["password", "token", "access_token", "refresh_token", "refresh_origin"]
#: Every kind a server may have: keyring cannot list entries, so deleting all of a
#: server's secrets means deleting each kind by name. Sign-in adds kinds here.
SECRET_KINDS: tuple[SecretKind, ...] = (
    "password",
    "token",
    "access_token",
    "refresh_token",
    "refresh_origin",
)
#: Kinds that are stored here to stay with a secret but are no secret themselves: not
#: registered with the log redaction (an origin in every log line would be lost).
_NOT_SECRET: frozenset[SecretKind] = frozenset({"refresh_origin"})
_SERVICE = "zhiva-viewer"
_FILE_FORMAT = "zhiva-viewer/secrets"
_FILE_LOCK_TIMEOUT = 5.0


class SecretStore(abc.ABC):
    """Passwords and tokens of servers, keyed by `ServerConfig.id` and a `SecretKind`."""

    #: ``keyring`` or ``file``.
    backend: Literal["keyring", "file"]
    #: Where the secrets are, in words, e.g. "the OS keyring (SecretService Keyring)".
    description: str
    #: A visible note when the user should know something (the file fallback), else None.
    note: str | None = None

    def __init__(self) -> None:
        self._revisions: dict[str, int] = {}

    def get(self, server_id: str, kind: SecretKind) -> str | None:
        value = self._get(server_id, kind)
        if kind not in _NOT_SECRET:
            register_secret(value)
        return value

    def set(self, server_id: str, kind: SecretKind, value: str, *, renewal: bool = False) -> None:
        """Store a secret. A `renewal` (a session writing back its own refreshed token)
        is not a change of the server's credentials: `revision` stays."""
        if kind not in SECRET_KINDS:
            raise ValueError(f"unknown secret kind {kind!r}")
        if kind not in _NOT_SECRET:
            register_secret(value)
        self._set(server_id, kind, value)
        if not renewal:
            self._changed(server_id)

    def delete(self, server_id: str, kind: SecretKind, *, renewal: bool = False) -> None:
        """Delete one secret; deleting a missing one is not an error."""
        self._delete(server_id, (kind,))
        if not renewal:
            self._changed(server_id)

    def delete_server(self, server_id: str) -> None:
        """Delete every secret of a server (removing it, signing out)."""
        self._delete(server_id, SECRET_KINDS)
        self._changed(server_id)

    def revision(self, server_id: str) -> int:
        """Counts the changes of a server's credentials made through this store: a
        connection made at one revision is stale at another (sign-in, sign-out, a new
        password)."""
        return self._revisions.get(server_id, 0)

    def _changed(self, server_id: str) -> None:
        self._revisions[server_id] = self._revisions.get(server_id, 0) + 1

    def has(self, server_id: str, kind: SecretKind) -> bool:
        return self.get(server_id, kind) is not None

    @abc.abstractmethod
    def _get(self, server_id: str, kind: SecretKind) -> str | None: ...

    @abc.abstractmethod
    def _set(self, server_id: str, kind: SecretKind, value: str) -> None: ...

    @abc.abstractmethod
    def _delete(self, server_id: str, kinds: tuple[SecretKind, ...]) -> None: ...


# --- keyring ------------------------------------------------------------------------


def _backend_name(backend: KeyringBackend) -> str:
    name = getattr(backend, "name", "") or type(backend).__name__
    return str(name)


def keyring_problem(backend: KeyringBackend, service: str) -> str | None:
    """Why `backend` cannot hold our secrets, or None when a probe round trip worked."""
    from keyring.backends import chainer, fail

    candidates = (
        list(backend.backends) if isinstance(backend, chainer.ChainerBackend) else [backend]
    )
    usable = []
    for candidate in candidates:
        if isinstance(candidate, fail.Keyring) or type(candidate).__module__.endswith(".null"):
            continue
        try:
            priority = float(candidate.priority)
        except Exception:  # keyring's own probes raise all kinds of errors
            continue
        # Priority below 1 marks keyrings.alt's plaintext/encrypted files: no better
        # than our own 0600 file, and less visible.
        if priority >= 1:
            usable.append(candidate)
    if not usable:
        return f"no OS keyring is available (keyring offers only {_backend_name(backend)})"
    probe_user = f"probe-{_random.token_hex(6)}"
    probe_value = _random.token_hex(8)
    try:
        backend.set_password(service, probe_user, probe_value)
        try:
            if backend.get_password(service, probe_user) != probe_value:
                return f"the keyring ({_backend_name(backend)}) did not return what was stored"
        finally:
            backend.delete_password(service, probe_user)
    # A locked collection, a missing D-Bus session, a denied prompt: any failure of
    # the round trip means "do not trust this keyring".
    except Exception as exc:
        return f"the keyring ({_backend_name(backend)}) failed a test: {type(exc).__name__}: {exc}"
    return None


class KeyringSecretStore(SecretStore):
    backend = "keyring"

    def __init__(self, keyring_backend: KeyringBackend, *, service: str = _SERVICE) -> None:
        super().__init__()
        self._keyring = keyring_backend
        self.service = service
        self.description = f"the OS keyring ({_backend_name(keyring_backend)})"

    @staticmethod
    def _user(server_id: str, kind: SecretKind) -> str:
        return f"{server_id}/{kind}"

    def _get(self, server_id: str, kind: SecretKind) -> str | None:
        try:
            return self._keyring.get_password(self.service, self._user(server_id, kind))
        except Exception as exc:
            raise SecretStoreError(f"Reading from {self.description} failed: {exc}") from exc

    def _set(self, server_id: str, kind: SecretKind, value: str) -> None:
        try:
            self._keyring.set_password(self.service, self._user(server_id, kind), value)
        except Exception as exc:
            raise SecretStoreError(f"Saving to {self.description} failed: {exc}") from exc

    def _delete(self, server_id: str, kinds: tuple[SecretKind, ...]) -> None:
        from keyring.errors import PasswordDeleteError

        for kind in kinds:
            try:
                self._keyring.delete_password(self.service, self._user(server_id, kind))
            except PasswordDeleteError:
                pass  # there was none
            except Exception as exc:
                raise SecretStoreError(f"Deleting from {self.description} failed: {exc}") from exc


# --- file ---------------------------------------------------------------------------


class _SecretsFile(msgspec.Struct, kw_only=True):
    format: str = _FILE_FORMAT
    version: int = 1
    secrets: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)


class FileSecretStore(SecretStore):
    """``secrets.json``, mode 0600, written atomically under its own lock."""

    backend = "file"

    def __init__(self, path: Path, *, reason: str = "") -> None:
        super().__init__()
        self.path = Path(path)
        self.description = f"the file {self.path} (readable only by you)"
        why = f" because {reason}" if reason else ""
        self.note = (
            f"Passwords and tokens are kept in {self.path}, readable only by your user "
            f"account{why}. Anyone with access to your account can read them."
        )

    def _lock(self) -> FileLock:
        return FileLock(self.path, timeout=_FILE_LOCK_TIMEOUT, what="passwords and tokens")

    def _read(self) -> _SecretsFile:
        remove_stale_temp_files(self.path)
        data = self._read_own_file()
        if data is None:
            return _SecretsFile()
        try:
            return msgspec.json.decode(data, type=_SecretsFile)
        except (msgspec.DecodeError, RecursionError) as exc:
            # Keep the bad file (someone may recover a password from it), start afresh.
            moved = move_aside(self.path, "corrupt")
            log.warning("%s was not readable (%s); moved to %s", self.path, exc, moved)
            return _SecretsFile()

    def _read_own_file(self) -> bytes | None:
        """The file's bytes (None: absent), its mode tightened to 0600 on the open file.

        Never through a symbolic link: whoever made the link chose its target, and a
        chmod or a read through it would act on their file. Opened without blocking,
        so a FIFO put in its place cannot hang the app.
        """
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP or self.path.is_symlink():
                raise SecretStoreError(
                    f"{self.path} is a symbolic link; passwords and tokens are never read or "
                    "written through one. Remove the link (or replace it with the file it "
                    "points to) and try again.",
                    path=self.path,
                ) from exc
            raise SecretStoreError(f"Cannot read {self.path}: {exc}", path=self.path) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SecretStoreError(
                    f"{self.path} is not a regular file; remove it and try again.",
                    path=self.path,
                )
            self._tighten_mode(fd, stat.S_IMODE(info.st_mode))
            with os.fdopen(fd, "rb", closefd=False) as file:
                return file.read()
        except OSError as exc:
            raise SecretStoreError(f"Cannot read {self.path}: {exc}", path=self.path) from exc
        finally:
            os.close(fd)

    def _tighten_mode(self, fd: int, mode: int) -> None:
        if os.name != "posix" or not mode & 0o077:
            return
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
            log.warning("%s was readable by others (mode %o); set to 0600", self.path, mode)

    def _write(self, content: _SecretsFile) -> None:
        try:
            atomic_write(self.path, msgspec.json.encode(content), mode=0o600)
        except OSError as exc:
            raise SecretStoreError(f"Cannot save {self.path}: {exc}", path=self.path) from exc

    def _get(self, server_id: str, kind: SecretKind) -> str | None:
        with self._lock():
            return self._read().secrets.get(server_id, {}).get(kind)

    def _set(self, server_id: str, kind: SecretKind, value: str) -> None:
        with self._lock():
            content = self._read()
            content.secrets.setdefault(server_id, {})[kind] = value
            self._write(content)

    def _delete(self, server_id: str, kinds: tuple[SecretKind, ...]) -> None:
        with self._lock():
            content = self._read()
            entry = content.secrets.get(server_id)
            if not entry or not any(k in entry for k in kinds):
                return
            for kind in kinds:
                entry.pop(kind, None)
            if not entry:
                del content.secrets[server_id]
            self._write(content)


# --- choosing -----------------------------------------------------------------------


def _service_for(paths: AppPaths) -> str:
    # A portable config dir gets its own keyring namespace: two portable installs (or
    # test runs) must not read each other's secrets for a preset's shared id.
    if not paths.portable:
        return _SERVICE
    tag = hashlib.sha256(str(paths.config_dir).encode()).hexdigest()[:12]
    return f"{_SERVICE}/{tag}"


def open_secret_store(
    paths: AppPaths,
    *,
    backend: Literal["auto", "keyring", "file"] | None = None,
    env: Mapping[str, str] | None = None,
    keyring_backend: Any = None,
) -> SecretStore:
    """The secret store for this run: the OS keyring when it works, else the 0600 file.

    `backend` (or ``ZHIVA_SECRET_STORE``) forces one; ``keyring`` raises
    `SecretStoreError` when no keyring works. `keyring_backend` replaces keyring's own
    choice (tests pass a fake; nothing else should).
    """
    env = os.environ if env is None else env
    choice = backend or env.get(ENV_SECRET_STORE, "auto").strip().lower() or "auto"
    if choice not in ("auto", "keyring", "file"):
        raise SecretStoreError(f"{ENV_SECRET_STORE} must be auto, keyring or file, not {choice!r}.")
    if choice == "file":
        return FileSecretStore(paths.secrets_file, reason=f"{ENV_SECRET_STORE}=file")
    service = _service_for(paths)
    try:
        if keyring_backend is None:
            import keyring

            keyring_backend = keyring.get_keyring()
        problem = keyring_problem(keyring_backend, service)
    except Exception as exc:  # keyring's import-time backend discovery can fail oddly
        problem = f"the keyring could not be initialised ({type(exc).__name__}: {exc})"
    if problem is None:
        return KeyringSecretStore(keyring_backend, service=service)
    if choice == "keyring":
        raise SecretStoreError(f"Cannot use the OS keyring: {problem}.")
    log.info("secrets go to %s: %s", paths.secrets_file, problem)
    return FileSecretStore(paths.secrets_file, reason=problem)
