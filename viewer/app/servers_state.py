"""Settings > Servers as plain Python: the form, its live validation, and its actions.

`ServerForm` holds what the user typed for one server (text exactly as typed, so a
half-typed timeout can be reported rather than rejected) and recomputes, on every
change, each field's message (`net.validate_config` plus name uniqueness among every
server shown, plus what only the form can check: numbers, pasted tokens), the warnings
that do not block saving, the decoded token claims and whether anything is unsaved.

`ServersPageState` is the page: the "Selected Server" list, the form of the server
shown, and every action (save, create, duplicate, delete, test connection, sign in and
out, configuration link, import/export), each guarded by a confirmation when it would
lose edits. Network work goes to `BackgroundTasks`; results come back on the UI thread.
It emits topic names on `changed`; the dearpygui view (`servers_page`) redraws them.
No dearpygui here: tests drive this module with no display.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec

from net import (
    SERVER_FIELDS,
    AuthType,
    CheckResult,
    DicomWebError,
    Discovery,
    LoginCancelled,
    ServerCheck,
    ServerConfig,
    ServerField,
    TokenClaims,
    TokenError,
    TokenSet,
    check_server,
    configuration_link_origin,
    decode_token,
    discover,
    new_server_id,
    parse_configuration_link,
    qido_root,
    validate_config,
    validate_url,
    wado_rs_root,
    wado_uri_root,
)
from viewer.settings import (
    EntryKind,
    InvalidServer,
    ServerEntry,
    ServerRegistry,
    SettingsError,
    atomic_write,
)
from viewer.signin import (
    LinkResult,
    ServerChangeNeedsConfirmation,
    auth_for,
    configure_from_link,
    configure_from_token,
    same_server_url,
    sign_in_with_browser,
    sign_out,
)

from .state import AppState, Confirmation, Level, Signal
from .ui_thread import BackgroundTasks, CancelToken

__all__ = [
    "AUTH_LABELS",
    "CHOICE_LABELS",
    "FORM_FIELDS",
    "CheckState",
    "DetectState",
    "FieldSpec",
    "FormKind",
    "PageTopic",
    "ServerForm",
    "ServersPageState",
    "SignInState",
    "StoredSecrets",
    "describe_claims",
]

log = logging.getLogger("viewer.app.servers")

FormKind = Literal["user", "managed", "preset", "new"]
PageTopic = Literal["entries", "form", "edit", "check", "signin", "message", "detect"]
Clock = Callable[[], float]

AUTH_LABELS: Mapping[AuthType, str] = {
    "none": "None",
    "basic": "Basic (user name and password)",
    "token": "Token (pasted Zhiva token)",
    "zhiva": "Zhiva login (in the browser)",
}

#: Widget labels of choice values (values without one are shown as they are).
CHOICE_LABELS: Mapping[str, str] = {str(k): v for k, v in AUTH_LABELS.items()}


#: One row of the form: the catalogue's description of a field (`net.SERVER_FIELDS`).
FieldSpec = ServerField
#: Every field of `ServerConfig` except `id`, plus the two secrets, in form order.
FORM_FIELDS: tuple[FieldSpec, ...] = SERVER_FIELDS
_SPECS = {spec.name: spec for spec in FORM_FIELDS}
#: Fields whose text is kept as typed but saved without surrounding spaces.
_STRIPPED = frozenset(
    s.name
    for s in FORM_FIELDS
    if s.kind in ("text", "url", "postfix", "path", "uuid") and s.name != "name"
)

FormValue = str | bool


def _key(name: str) -> str:
    return name.strip().casefold()


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _in(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def describe_claims(claims: TokenClaims, now: float) -> str:
    """One line about a token's user: who, what they may do, until when."""
    who = claims.name or claims.username or "unknown user"
    if claims.username and claims.name and claims.username != claims.name:
        who = f"{claims.name} ({claims.username})"
    parts = [who, "may store and edit data" if claims.can_edit else "read-only"]
    if claims.exp is not None:
        left = claims.exp - now
        when = _when(claims.exp)
        parts.append(f"expired {when}" if left <= 0 else f"expires {when} (in {_in(left)})")
    return " · ".join(parts)


@dataclass(frozen=True)
class StoredSecrets:
    """What the secret store holds for the server in the form (never the values)."""

    password: bool = False
    pasted_token: bool = False
    #: Claims of the stored session's access token, when there is a session.
    session: TokenClaims | None = None

    @classmethod
    def of(cls, registry: ServerRegistry, server_id: str) -> StoredSecrets:
        secrets = registry.secrets
        session: TokenClaims | None = None
        access = secrets.get(server_id, "access_token")
        if access:
            try:
                session = TokenSet(access_token=access).access_claims()
            except TokenError:
                session = TokenClaims()
        return cls(
            password=secrets.has(server_id, "password"),
            pasted_token=secrets.has(server_id, "token"),
            session=session,
        )


def _values_of(config: ServerConfig) -> dict[str, FormValue]:
    values: dict[str, FormValue] = {}
    for spec in FORM_FIELDS:
        if spec.kind == "secret":
            values[spec.name] = ""
            continue
        raw = getattr(config, spec.name)
        values[spec.name] = (
            raw if isinstance(raw, bool) else f"{raw:g}" if spec.kind == "seconds" else str(raw)
        )
    return values


class ServerForm:
    """The values of one server as typed, and everything derived from them."""

    def __init__(
        self,
        base: ServerConfig,
        *,
        kind: FormKind,
        source: str = "",
        stored: StoredSecrets | None = None,
        name_taken: Callable[[str, str], str | None] = lambda name, server_id: None,
        clock: Clock = time.time,
        pristine: bool = False,
    ) -> None:
        #: The server as loaded (what "unsaved" compares against; `expected` on save).
        self.base = base
        self.kind: FormKind = kind
        self.source = source
        self.stored = stored or StoredSecrets()
        self._name_taken = name_taken
        self._clock = clock
        #: An empty new form nobody typed into yet: leaving it loses nothing.
        self.pristine = pristine
        self.initial = _values_of(base)
        self.values: dict[str, FormValue] = dict(self.initial)
        self.errors: dict[str, str] = {}
        self.warnings: dict[str, str] = {}
        self.token_claims: TokenClaims | None = None
        #: Fields Detect set that the user has not touched since: marked in the form.
        self.detected: set[str] = set()
        self.revalidate()

    # -- reading ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.base.id

    @property
    def read_only(self) -> bool:
        return self.kind == "managed"

    @property
    def is_new(self) -> bool:
        return self.kind == "new"

    @property
    def auth_type(self) -> AuthType:
        value = self.values["auth_type"]
        return value if value in AUTH_LABELS else "none"  # type: ignore[return-value]

    def text(self, name: str) -> str:
        value = self.values[name]
        return value if isinstance(value, str) else ""

    def flag(self, name: str) -> bool:
        return bool(self.values[name])

    def visible(self, name: str) -> bool:
        """Whether a field's widget shows for the chosen authentication type."""
        spec = _SPECS[name]
        return not spec.auth or self.auth_type in spec.auth

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(n for n, v in self.values.items() if v != self.initial[n])

    @property
    def dirty(self) -> bool:
        """Anything typed that is not saved (a new server is unsaved until saved)."""
        return self.is_new or bool(self.changed_fields)

    @property
    def valid(self) -> bool:
        return not self.errors

    def config(self) -> ServerConfig | None:
        """The server as typed, or None while a number does not parse."""
        changes: dict[str, Any] = {}
        for spec in FORM_FIELDS:
            if spec.kind == "secret":
                continue
            value = self.values[spec.name]
            if spec.kind == "seconds":
                try:
                    changes[spec.name] = float(str(value).strip())
                except ValueError:
                    return None
            elif isinstance(value, str) and spec.name in _STRIPPED:
                changes[spec.name] = value.strip()
            else:
                changes[spec.name] = value
        try:
            return msgspec.structs.replace(self.base, **changes)
        except (TypeError, ValueError):  # pragma: no cover - every value comes from a spec
            return None

    def roots(self) -> dict[str, str]:
        """The URL roots the viewer will call, for a live preview under the postfixes."""
        config = self.config()
        if config is None or "url" in self.errors:
            return {}
        return {
            "QIDO-RS": qido_root(config),
            "WADO-RS": wado_rs_root(config),
            "WADO-URI": wado_uri_root(config),
        }

    def claims_text(self) -> str:
        """The token line under the credentials: pasted token, else the stored session."""
        now = self._clock()
        if self.token_claims is not None:
            return "Token for " + describe_claims(self.token_claims, now)
        if self.auth_type in ("token", "zhiva") and self.stored.session is not None:
            return "Signed in as " + describe_claims(self.stored.session, now)
        return ""

    # -- editing ----------------------------------------------------------------------

    def set(self, name: str, value: FormValue) -> bool:
        """Change one field as the user typed it; returns whether anything changed."""
        if self.read_only or name not in self.values:
            return False
        spec = _SPECS[name]
        if spec.kind == "bool":
            value = bool(value)
        elif not isinstance(value, str):
            value = str(value)
        if spec.kind == "choice" and value not in spec.choices:
            return False
        self.detected.discard(name)  # the user has looked at it
        if self.values[name] == value:
            return False
        self.values[name] = value
        self.pristine = False
        if name == "token":
            self._fill_from_token()
        self.revalidate()
        return True

    def apply_detected(self, config: ServerConfig, fields: tuple[str, ...]) -> tuple[str, ...]:
        """Fill in what Detect proposed and mark it; returns the fields that changed."""
        if self.read_only:
            return ()
        proposed = _values_of(config)
        changed = tuple(
            name for name in fields if name in self.values and self.values[name] != proposed[name]
        )
        for name in changed:
            self.values[name] = proposed[name]
        self.detected = set(fields) & set(self.values)
        if changed:
            self.pristine = False
        self.revalidate()
        return changed

    def _fill_from_token(self) -> None:
        # A valid pasted token says where to exchange and renew it, and (for a server
        # without a URL yet) which PACS it is for, as a configuration link would.
        try:
            claims = decode_token(self.text("token"), clock=self._clock)
        except (TokenError, ValueError):
            return
        self.values["token_server"] = claims.token_server
        self.values["refresh_server"] = claims.refresh_server
        if not self.text("url").strip():
            self.values["url"] = claims.pacs.rstrip("/")
        self.values["can_store"] = claims.can_edit

    def revalidate(self) -> None:
        errors: dict[str, str] = {}
        warnings: dict[str, str] = {}
        config = self.config()
        for name in ("connect_timeout", "read_timeout"):
            try:
                float(self.text(name).strip())
            except ValueError:
                errors[name] = "Timeout must be a number of seconds, e.g. 30."
        if config is not None:
            errors.update(validate_config(config))
            if "name" not in errors:
                taken = self._name_taken(config.name, config.id)
                if taken is not None:
                    errors["name"] = taken
        self.token_claims = None
        token = self.text("token").strip()
        if self.auth_type == "token" and token:
            try:
                self.token_claims = decode_token(token, clock=self._clock)
            except (TokenError, ValueError) as exc:
                errors["token"] = getattr(exc, "message", str(exc)) or "This is not a token."
        if self.auth_type == "basic" and not self.text("password") and not self.stored.password:
            warnings["password"] = "No password is stored yet: type one, or sign-in will fail."
        if (
            self.auth_type == "token"
            and not token
            and self.stored.session is None
            and not self.stored.pasted_token
        ):
            warnings["token"] = "Not signed in: paste a token or open a configuration link."
        if self.auth_type == "zhiva" and self.stored.session is None:
            warnings["auth_server_url"] = "Not signed in yet: use Sign in."
        if self.read_only:
            # The organisation's entry is shown as it is; a copy is what gets fixed.
            errors = {}
        self.errors = errors
        self.warnings = warnings

    def generate_uuid(self) -> str:
        import uuid

        value = str(uuid.uuid4())
        self.set("uuid", value)
        return value

    def unsaved_description(self) -> str | None:
        """What would be lost by leaving this form, or None when nothing would."""
        if self.read_only or self.pristine:
            return None
        name = self.text("name").strip() or "the new server"
        if self.is_new:
            return f"{name!r} is not saved yet."
        if self.changed_fields:
            return f"You have unsaved changes to {name!r}."
        return None


# --- the page -------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckState:
    """The connection test: idle, running, or its results."""

    status: Literal["idle", "running", "done"] = "idle"
    results: tuple[CheckResult, ...] = ()
    summary: str = ""
    server_id: str = ""

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    def result(self, name: str) -> CheckResult | None:
        return next((r for r in self.results if r.name == name), None)


@dataclass(frozen=True)
class DetectState:
    """Detect (server discovery): idle, running, or its findings, one line each."""

    status: Literal["idle", "running", "done"] = "idle"
    lines: tuple[str, ...] = ()
    summary: str = ""
    found: bool = False


@dataclass(frozen=True)
class SignInState:
    status: Literal["idle", "waiting", "failed"] = "idle"
    detail: str = ""
    #: The login page's URL while waiting, for "open it yourself" if no browser opened.
    url: str = ""


@dataclass(frozen=True)
class _Message:
    level: Level
    text: str


@dataclass
class _Labels:
    ids: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def _kind_of(entry: ServerEntry) -> FormKind:
    kinds: dict[EntryKind, FormKind] = {"user": "user", "managed": "managed", "preset": "preset"}
    return kinds[entry.kind]


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, DicomWebError):
        return f"{exc.message} {exc.hint}".strip() if exc.hint else exc.message
    if isinstance(exc, SettingsError):
        return exc.message
    return f"Unexpected error: {exc}"


class ServersPageState:
    """The Servers page over a `ServerRegistry`; every method runs on the UI thread."""

    def __init__(
        self,
        registry: ServerRegistry,
        app: AppState,
        tasks: BackgroundTasks,
        *,
        clock: Clock = time.time,
        open_browser: Callable[[str], object] | None = None,
    ) -> None:
        self.registry = registry
        self.app = app
        self.tasks = tasks
        self._clock = clock
        self._open_browser = open_browser
        self.changed: Signal[PageTopic] = Signal()
        self.entries: tuple[ServerEntry, ...] = ()
        self.check = CheckState()
        self.detection = DetectState()
        self.signin = SignInState()
        self.message: _Message | None = None
        #: Called after a link or a sign-in set a server up (the app opens it).
        self.on_server_ready: Callable[[LinkResult], None] | None = None
        self.form = ServerForm(ServerConfig(), kind="new", pristine=True)
        app.unsaved_changes = lambda: self.form.unsaved_description()
        self.reload_entries()
        for notice in registry.notices:
            app.notify("warning", notice)
        if registry.secrets.note:
            log.info("%s", registry.secrets.note)
        selected = registry.selected()
        first = selected or (self.entries[0] if self.entries else None)
        if first is not None:
            self._load_entry(first)
        else:
            self._load_new()

    # -- the list -------------------------------------------------------------------

    def reload_entries(self) -> None:
        self.entries = self.registry.entries()
        self.changed.emit("entries")
        self._update_status()

    @property
    def selected_id(self) -> str | None:
        """The server the app uses (saved selection)."""
        selected = self.registry.selected()
        return None if selected is None else selected.id

    def entry_labels(self) -> tuple[tuple[str, str], ...]:
        """(id, label) for the Selected Server dropdown; labels are unique."""
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for entry in self.entries:
            label = entry.name or "(unnamed)"
            if entry.kind == "managed":
                label += " (organisation)"
            elif entry.kind == "preset":
                label += " (preset)"
            if label in seen:
                label += f" [{entry.id[:8]}]"
            seen.add(label)
            out.append((entry.id, label))
        if self.form.is_new:
            out.append((self.form.id, self.new_label()))
        return tuple(out)

    def new_label(self) -> str:
        return (self.form.text("name").strip() or "New server") + " (not saved)"

    def _entry(self, server_id: str) -> ServerEntry | None:
        return next((e for e in self.entries if e.id == server_id), None)

    def _name_taken(self, name: str, server_id: str) -> str | None:
        for entry in self.entries:
            if entry.id != server_id and _key(entry.name) == _key(name):
                where = {"user": "yours", "managed": "organisation", "preset": "preset"}[entry.kind]
                return f"A server called {entry.name!r} already exists ({where})."
        return None

    # -- loading a form ---------------------------------------------------------------

    def _form_for(self, config: ServerConfig, kind: FormKind, source: str, **kw: Any) -> None:
        stored = StoredSecrets.of(self.registry, config.id) if kind != "new" else StoredSecrets()
        self.form = ServerForm(
            config,
            kind=kind,
            source=source,
            stored=stored,
            name_taken=self._name_taken,
            clock=self._clock,
            **kw,
        )
        self.check = CheckState()
        if self.tasks.cancel("detect") or self.detection.status != "idle":
            self.detection = DetectState()
            self.changed.emit("detect")
        if self.signin.status != "waiting":
            self.signin = SignInState()
        self.changed.emit("form")
        self.changed.emit("entries")
        self.changed.emit("check")

    def _load_entry(self, entry: ServerEntry) -> None:
        self._form_for(entry.config, _kind_of(entry), entry.source)

    def _load_new(self) -> None:
        self._form_for(ServerConfig(id=new_server_id()), "new", "", pristine=True)

    def choose(self, server_id: str) -> None:
        """The Selected Server dropdown: show that server (asking before edits are lost)."""
        if server_id == self.form.id:
            return
        entry = self._entry(server_id)
        if entry is None:
            return

        def load() -> None:
            self._load_entry(entry)

        self.app.guard(f"Show {entry.name!r} and discard them?", load, confirm_label="Discard")
        # The dropdown already shows the new choice; if the user keeps editing, put it back.
        self.changed.emit("entries")

    def create_new(self) -> None:
        self.app.guard(
            "Create a new server and discard them?", self._load_new, confirm_label="Discard"
        )

    def duplicate(self) -> None:
        """A copy of the shown server to edit (how a managed server is changed)."""
        config = self.form.config() or self.form.base
        taken = {_key(e.name) for e in self.entries}
        name, n = f"{config.name} (copy)", 2
        while _key(name) in taken:
            name, n = f"{config.name} (copy {n})", n + 1
        copy = msgspec.structs.replace(config, id=new_server_id(), name=name)

        def load() -> None:
            self._form_for(copy, "new", "")
            self._say("info", f"Copy of {config.name!r}: change it, then Save Settings.")

        if self.form.read_only or not self.form.changed_fields:
            load()
        else:
            self.app.guard("Duplicate and discard them?", load, confirm_label="Discard")

    def set_field(self, name: str, value: FormValue) -> None:
        if self.form.set(name, value):
            if name == "auth_type":
                self.check = CheckState()
                self.changed.emit("check")
            self.changed.emit("edit")
            if name == "name" and self.form.is_new:
                self.changed.emit("entries")

    def generate_uuid(self) -> None:
        if not self.form.read_only:
            self.form.generate_uuid()
            self.changed.emit("edit")

    # -- saving -----------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        """Whether the shown server is the one the app uses."""
        return self.selected_id == self.form.id

    @property
    def can_save(self) -> bool:
        form = self.form
        if form.errors:
            return False
        return (
            form.dirty
            or bool(form.text("password"))
            or bool(form.text("token"))
            or not self.is_active
        )

    @property
    def can_test(self) -> bool:
        return not self.form.errors and not self.tasks.running("check")

    def save(self) -> bool:
        """Save Settings: store the form (and typed secrets) and use this server."""
        form = self.form
        if not self.can_save:
            return False
        config = form.config()
        if config is None:
            return False
        password = form.text("password") or None if form.auth_type == "basic" else None
        token = form.text("token").strip() or None if form.auth_type == "token" else None
        try:
            if form.kind == "new":
                saved = self.registry.add(config, password=password, token=token)
            elif form.kind == "managed":
                saved = form.base
            else:
                changes = {
                    n: getattr(config, n)
                    for n in msgspec.structs.asdict(config)
                    if n != "id" and getattr(config, n) != getattr(form.base, n)
                }
                expected = form.base if form.kind == "user" else None
                if changes or password or token or form.kind == "preset":
                    saved = self.registry.edit(
                        form.id, changes, expected=expected, password=password, token=token
                    )
                else:
                    saved = form.base
            if token:
                # A new pasted token replaces the session of the previous one.
                for kind in ("access_token", "refresh_token"):
                    self.registry.secrets.delete(saved.id, kind)
            self.registry.select(saved.id)
        except InvalidServer as exc:
            form.errors.update(exc.errors)
            self._say("error", f"Not saved: {exc.message}")
            self.changed.emit("edit")
            return False
        except SettingsError as exc:
            self._say("error", f"Not saved: {exc.message}")
            return False
        self.reload_entries()
        entry = self._entry(saved.id)
        if entry is not None:
            self._load_entry(entry)
        self._say("success", f"Saved {saved.name!r}; it is the selected server.")
        return True

    def request_delete(self) -> None:
        form = self.form
        if form.kind != "user":
            return
        name = form.base.name

        def remove() -> None:
            try:
                self.registry.remove(form.id)
            except SettingsError as exc:
                self._say("error", exc.message)
                return
            self.reload_entries()
            nxt = self.registry.selected() or (self.entries[0] if self.entries else None)
            if nxt is None:
                self._load_new()
            else:
                self._load_entry(nxt)
            self._say("success", f"Removed {name!r} and its stored passwords and tokens.")

        self.app.ask(
            Confirmation(
                title="Delete server",
                message=f"Delete {name!r} and its stored passwords and tokens?\n"
                "This cannot be undone.",
                confirm_label="Delete",
                on_confirm=remove,
            )
        )

    # -- test connection ------------------------------------------------------------

    def test_connection(self) -> None:
        form = self.form
        config = form.config()
        if config is None or form.errors:
            return
        typed_password = form.text("password") if form.auth_type == "basic" else ""
        pasted = form.text("token").strip() if form.auth_type == "token" else ""
        registry = self.registry

        def work(cancel: CancelToken) -> ServerCheck:
            try:
                auth = _auth_for_test(registry, config, typed_password, pasted)
            except DicomWebError as exc:
                return ServerCheck(
                    server=config.name,
                    results=(
                        CheckResult(
                            name="signed in", status="fail", detail=exc.message, fix=exc.hint
                        ),
                    ),
                )
            return check_server(config, auth)

        def done(result: ServerCheck) -> None:
            failed = sum(r.status == "fail" for r in result.results)
            summary = "All checks passed." if result.ok else f"{failed} check(s) failed."
            self.check = CheckState("done", result.results, summary, config.id)
            self.changed.emit("check")
            self._update_status()

        def error(exc: BaseException) -> None:
            self.check = CheckState("done", (), _error_text(exc), config.id)
            self.changed.emit("check")

        self.tasks.submit(
            "check", f"Testing {config.name or config.url}…", work, on_done=done, on_error=error
        )
        self.check = CheckState("running", server_id=config.id)
        self.changed.emit("check")

    def cancel_test(self) -> None:
        if self.tasks.cancel("check"):
            self.check = CheckState()
            self.changed.emit("check")

    # -- detect (server discovery) ----------------------------------------------------

    @property
    def can_detect(self) -> bool:
        form = self.form
        return (
            not form.read_only
            and bool(form.text("url").strip())
            and not self.tasks.running("detect")
        )

    def detect(self) -> None:
        """Detect: probe the typed host (`net.discover`) and fill in what it proposes.

        Credentials go along only when the user gave them (Basic: the typed or stored
        password); the fields set are marked, and nothing is saved until Save Settings.
        """
        form = self.form
        if not self.can_detect:
            return
        base = form.config() or form.base
        url = form.text("url").strip()
        typed_password = form.text("password") if form.auth_type == "basic" else ""
        registry = self.registry

        def work(cancel: CancelToken) -> Discovery:
            return discover(url, base=base, auth=_auth_for_detect(registry, base, typed_password))

        def done(result: Discovery) -> None:
            if result.config is None:
                self.detection = DetectState(
                    "done", tuple(result.lines()), "No DICOMweb service found there."
                )
            else:
                changed = self.form.apply_detected(result.config, result.fields)
                summary = (
                    f"{result.layout or 'A DICOMweb service'}: {len(changed)} field(s) set — "
                    "check them, then Save Settings."
                    if changed
                    else f"{result.layout or 'A DICOMweb service'}: the form already says so."
                )
                self.detection = DetectState("done", tuple(result.lines()), summary, found=True)
                self.changed.emit("edit")
            self.changed.emit("detect")

        def error(exc: BaseException) -> None:
            self.detection = DetectState("done", (), _error_text(exc))
            self.changed.emit("detect")

        self.tasks.submit("detect", f"Detecting {url}…", work, on_done=done, on_error=error)
        self.detection = DetectState("running", summary="Detecting…")
        self.changed.emit("detect")

    # -- sign-in ----------------------------------------------------------------------

    def sign_in(self) -> None:
        """Zhiva login in the browser; sets the server up from the token that comes back."""
        form = self.form
        url = form.text("auth_server_url").strip()
        if validate_url(url, what="Auth Server URL") is not None:
            return
        ca_file = form.text("ca_file").strip()
        registry = self.registry
        open_browser = self._open_browser

        def work(cancel: CancelToken) -> LinkResult:
            def started(login: Any) -> None:
                cancel.on_cancel(login.cancel)
                # Shown on the page in case no browser opened (a server, a sandbox).
                url = str(login.url)
                self.tasks.post(lambda: self._show_login_url(url))

            kwargs: dict[str, Any] = {"ca_file": ca_file, "started": started}
            if open_browser is not None:
                kwargs["open_browser"] = open_browser
            return sign_in_with_browser(registry, url, **kwargs)

        def start() -> None:
            self.tasks.submit(
                "signin",
                "Waiting for sign-in in the browser…",
                work,
                on_done=self._link_done,
                on_error=self._signin_failed,
            )
            self.signin = SignInState("waiting", "Finish signing in in your browser.")
            self.changed.emit("signin")

        if form.is_new:
            start()
        else:
            self.app.guard(
                "Signing in sets the server up from your sign-in; discard them?",
                start,
                confirm_label="Sign in",
            )

    def _show_login_url(self, url: str) -> None:
        if self.signin.status == "waiting":
            self.signin = SignInState("waiting", self.signin.detail, url)
            self.changed.emit("signin")

    def cancel_sign_in(self) -> None:
        if self.tasks.cancel("signin"):
            self.signin = SignInState()
            self.changed.emit("signin")
            self._say("info", "Sign-in cancelled.")

    def _signin_failed(self, exc: BaseException) -> None:
        if isinstance(exc, ServerChangeNeedsConfirmation):
            self.signin = SignInState()
            self.changed.emit("signin")
            self._confirm_server_change(exc, "signin", "Signing in…")
            return
        if isinstance(exc, LoginCancelled) and "cancelled" in exc.message.lower():
            self.signin = SignInState()
        else:
            self.signin = SignInState("failed", _error_text(exc))
        self.changed.emit("signin")

    def _confirm_server_change(
        self, change: ServerChangeNeedsConfirmation, task: str, label: str
    ) -> None:
        """Show what a link or sign-in would change on an existing server; go ahead only
        when the user says so (the one-off token has not been used yet)."""
        registry = self.registry
        server = change.server
        ca_file = next((c.new for c in change.changes if c.field == "ca_file"), server.ca_file)

        def replace(cancel: CancelToken) -> LinkResult:
            return configure_from_token(
                registry,
                change.auth_token,
                ca_file=ca_file,
                replace=True,
                link_origin=change.link_origin,
            )

        def failed(exc: BaseException) -> None:
            self._say("error", f"{server.name!r} was not changed: {_error_text(exc)}")

        def confirmed() -> None:
            self.tasks.submit(task, label, replace, on_done=self._link_done, on_error=failed)

        lines = "\n".join(f"  {c.line()}" for c in change.changes)
        self.app.ask(
            Confirmation(
                title="Change this server?",
                message=f"This would change how {server.name!r} ({server.url}) signs in:\n"
                f"{lines}\nReplace these settings only if you trust where the link came from.",
                confirm_label="Replace",
                on_confirm=confirmed,
            )
        )
        self._say("warning", f"{server.name!r} was not changed; confirm the change to go ahead.")

    def _link_done(self, result: LinkResult) -> None:
        self.signin = SignInState()
        self.changed.emit("signin")
        self.reload_entries()
        entry = self._entry(result.config.id)
        if entry is not None:
            self._load_entry(entry)
        who = result.claims.name or result.claims.username or "unknown user"
        verb = "Added" if result.created else "Updated"
        self._say("success", f"{verb} {result.config.name!r} and signed in as {who}.")
        if self.on_server_ready is not None:
            self.on_server_ready(result)

    def sign_out(self) -> None:
        form = self.form
        if form.kind == "new":
            return
        sign_out(self.registry, form.id)
        form.stored = StoredSecrets.of(self.registry, form.id)
        form.revalidate()
        self.changed.emit("edit")
        self._update_status()
        self._say("info", f"Signed out of {form.base.name!r}.")

    # -- configuration link, import, export -------------------------------------------

    def use_link(self, link: str) -> None:
        """Set a server up from a configuration link (https://host/auth/oauth?token=...)."""
        link = link.strip()
        if not link:
            return
        # The CA file typed in the form is for the server in the form: a link for
        # another server keeps that server's own (or gets none).
        ca_file = self.form.text("ca_file").strip() if self._link_is_for_form(link) else ""
        registry = self.registry

        def work(cancel: CancelToken) -> LinkResult:
            return configure_from_link(registry, link, ca_file=ca_file)

        def failed(exc: BaseException) -> None:
            if isinstance(exc, ServerChangeNeedsConfirmation):
                self._confirm_server_change(exc, "link", "Setting up the server from the link…")
                return
            self._say("error", f"The configuration link did not work: {_error_text(exc)}")

        def start() -> None:
            self.tasks.submit(
                "link",
                "Setting up the server from the link…",
                work,
                on_done=self._link_done,
                on_error=failed,
            )

        self.app.guard("Use the link and discard them?", start, confirm_label="Use link")

    def _link_is_for_form(self, link: str) -> bool:
        if self.form.is_new:
            return True
        try:
            claims = decode_token(
                parse_configuration_link(link),
                clock=self._clock,
                link_origin=configuration_link_origin(link),
            )
        except DicomWebError:
            return True  # the link is refused anyway, saying why
        return same_server_url(self.form.text("url"), claims.pacs)

    def import_from(self, path: str) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            self._say("error", f"Cannot read {path}: {exc.strerror or exc}")
            return
        try:
            report = self.registry.import_servers(data, source=path)
        except SettingsError as exc:
            self._say("error", f"Nothing imported: {exc.message}")
            return
        self.reload_entries()
        names = ", ".join(repr(c.name) for c in report.added) or "none"
        parts = [f"Imported {len(report.added)} server(s): {names}."]
        if report.skipped:
            parts.append(f"Already there: {', '.join(report.skipped)}.")
        parts.extend(report.notes)
        parts.extend(f"Check {w}" for w in report.warnings)
        self._say("warning" if report.warnings else "success", " ".join(parts))

    def export_to(self, path: str) -> None:
        data = self.registry.export_servers()
        try:
            atomic_write(Path(path).absolute(), data)
        except OSError as exc:
            self._say("error", f"Cannot write {path}: {exc.strerror or exc}")
            return
        count = len(self.registry.settings.servers)
        self._say("success", f"Exported {count} server(s) to {path} (no passwords or tokens).")

    # -- status -----------------------------------------------------------------------

    def _say(self, level: Level, text: str) -> None:
        self.message = _Message(level, text)
        self.changed.emit("message")
        if level in ("warning", "error"):
            log.warning("%s", text)

    def _update_status(self) -> None:
        selected = self.registry.selected()
        if selected is None:
            self.app.set_status(server="No server selected", signin="")
            return
        config = selected.config
        stored = StoredSecrets.of(self.registry, config.id)
        if config.auth_type == "none":
            signin = "No sign-in needed"
        elif config.auth_type == "basic":
            signin = f"Basic: {config.username}" + ("" if stored.password else " (no password)")
        elif stored.session is not None:
            signin = "Signed in as " + describe_claims(stored.session, self._clock())
        elif stored.pasted_token:
            signin = "Token stored, not exchanged yet"
        else:
            signin = "Not signed in"
        self.app.set_status(server=f"Server: {selected.name}", signin=signin)


class _PastedTokenNotSaved(DicomWebError):
    pass


def _auth_for_detect(
    registry: ServerRegistry, config: ServerConfig, typed_password: str
) -> httpx.Auth | None:
    """Credentials for Detect: Basic ones the user typed or saved, else none at all."""
    if config.auth_type != "basic" or not config.username.strip():
        return None
    password = typed_password or registry.secrets.get(config.id, "password")
    return httpx.BasicAuth(config.username, password) if password else None


def _auth_for_test(
    registry: ServerRegistry, config: ServerConfig, typed_password: str, pasted: str
) -> httpx.Auth | None:
    """The credentials a connection test uses: what is typed, else what is stored."""
    if config.auth_type == "none":
        return None
    if config.auth_type == "basic":
        password = typed_password or registry.secrets.get(config.id, "password") or ""
        return httpx.BasicAuth(config.username, password)
    if pasted:
        raise _PastedTokenNotSaved(
            "The pasted token is not saved yet.",
            hint="Save Settings first: a sign-in token can be exchanged only once.",
        )
    return auth_for(registry, config)
