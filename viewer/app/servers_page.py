"""Settings > Servers: the dearpygui view of `servers_state.ServersPageState`.

Builds one widget per form field (label, input, one-line help, the field's message in
red, a warning in amber) and keeps them in step with the state: callbacks forward what
the user did to the state, and the state's topics say what to redraw. Nothing is
decided here — which widgets show, what is valid, whether Save is enabled all come from
the state, so the tests of those rules need no display.

Every item has a string tag (``servers/field/url``, ``servers/save``...) so GUI tests can
find where to click and type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from .fonts import Fonts
from .servers_state import (
    AUTH_LABELS,
    CHOICE_LABELS,
    FORM_FIELDS,
    FieldSpec,
    PageTopic,
    ServersPageState,
)
from .theme import ERROR, MUTED, SUCCESS, WARNING, Themes, level_colour

__all__ = ["ServersPage", "field_tag"]

ROOT = "servers/root"
_DIALOGS = ("servers/dialog/ca", "servers/dialog/import", "servers/dialog/export")
_STATUS_MARK = {"pass": "PASS", "fail": "FAIL", "n/a": "n/a"}


def field_tag(name: str) -> str:
    return f"servers/field/{name}"


def _sections() -> list[tuple[str, list[FieldSpec]]]:
    out: list[tuple[str, list[FieldSpec]]] = []
    for spec in FORM_FIELDS:
        if not out or out[-1][0] != spec.section:
            out.append((spec.section, []))
        out[-1][1].append(spec)
    return out


class ServersPage:
    """Builds the page under `parent` and follows the state until `teardown`."""

    def __init__(
        self, state: ServersPageState, parent: int | str, themes: Themes, fonts: Fonts
    ) -> None:
        self.state = state
        self.parent = parent
        self.themes = themes
        self.fonts = fonts
        self._combo_ids: list[str] = []
        self._disconnect: Callable[[], None] | None = None

    # -- building ---------------------------------------------------------------------

    def build(self) -> None:
        s = self.fonts.scale
        label_width = round(230 * s)
        footer_height = round(86 * s)
        with dpg.group(parent=self.parent, tag=ROOT):
            with dpg.group(horizontal=True):
                dpg.add_text("Selected Server")
                dpg.add_combo(
                    (), tag="servers/combo", width=round(360 * s), callback=self._on_combo
                )
                dpg.add_text("", tag="servers/kind", color=MUTED)
            with dpg.group(horizontal=True):
                dpg.add_input_text(
                    tag="servers/link",
                    hint="Paste a configuration link (https://host/auth/oauth?token=...)",
                    width=round(480 * s),
                    on_enter=True,
                    callback=self._on_link,
                )
                dpg.add_button(label="Use link", tag="servers/use_link", callback=self._on_link)
                dpg.add_spacer(width=round(12 * s))
                dpg.add_button(
                    label="Import…",
                    tag="servers/import",
                    callback=lambda: dpg.show_item("servers/dialog/import"),
                )
                dpg.add_button(
                    label="Export…",
                    tag="servers/export",
                    callback=lambda: dpg.show_item("servers/dialog/export"),
                )
            dpg.add_spacer(height=round(2 * s))
            with dpg.child_window(tag="servers/scroll", height=-footer_height, border=True):
                for section, specs in _sections():
                    with dpg.group(tag=f"servers/section/{section}"):
                        heading = dpg.add_text(section)
                        if self.fonts.heading is not None:
                            dpg.bind_item_font(heading, self.fonts.heading)
                        with dpg.table(
                            header_row=False,
                            policy=dpg.mvTable_SizingFixedFit,
                            tag=f"servers/table/{section}",
                        ):
                            dpg.add_table_column(width_fixed=True, init_width_or_weight=label_width)
                            dpg.add_table_column(width_stretch=True)
                            for spec in specs:
                                self._field_row(spec)
                        self._section_extras(section)
                        dpg.add_spacer(height=round(6 * s))
                self._check_section()
            dpg.add_text("", tag="servers/message", wrap=0)
            with dpg.table(header_row=False, tag="servers/footer"):
                dpg.add_table_column(width_stretch=True)
                dpg.add_table_column(width_fixed=True)
                with dpg.table_row():
                    with dpg.group(horizontal=True):
                        dpg.add_button(
                            label="Create New Server",
                            tag="servers/new",
                            callback=lambda: self.state.create_new(),
                        )
                        dpg.add_button(
                            label="Duplicate to edit",
                            tag="servers/duplicate",
                            callback=lambda: self.state.duplicate(),
                        )
                        dpg.add_button(
                            label="Delete",
                            tag="servers/delete",
                            callback=lambda: self.state.request_delete(),
                        )
                    with dpg.group(horizontal=True):
                        dpg.add_text("", tag="servers/unsaved", color=WARNING)
                        dpg.add_button(
                            label="Save Settings",
                            tag="servers/save",
                            width=round(150 * s),
                            callback=lambda: self.state.save(),
                        )
        dpg.bind_item_theme("servers/save", self.themes.primary)
        dpg.bind_item_theme("servers/delete", self.themes.danger)
        self._file_dialogs()
        self._disconnect = self.state.changed.connect(self._on_change)
        for topic in ("entries", "form", "check", "signin", "message", "detect"):
            self._on_change(topic)

    def _field_row(self, spec: FieldSpec) -> None:
        s = self.fonts.scale
        name = spec.name
        with dpg.table_row(tag=f"servers/row/{name}"):
            dpg.add_text(spec.label, tag=f"servers/label/{name}")
            with dpg.group():
                with dpg.group(horizontal=True):
                    self._widget(spec, s)
                dpg.add_text(spec.help, color=MUTED, tag=f"servers/help/{name}")
                dpg.add_text(
                    "Set by Detect: check it, then Save Settings.",
                    color=SUCCESS,
                    tag=f"servers/detected/{name}",
                    show=False,
                )
                if name == "url":
                    dpg.add_text("", tag="servers/detect/summary", show=False, wrap=0)
                    dpg.add_text("", tag="servers/detect/findings", color=MUTED, show=False, wrap=0)
                dpg.add_text("", color=ERROR, tag=f"servers/error/{name}", show=False)
                dpg.add_text("", color=WARNING, tag=f"servers/warning/{name}", show=False)

    def _widget(self, spec: FieldSpec, s: float) -> None:
        tag = field_tag(spec.name)
        common: dict[str, Any] = {"tag": tag, "callback": self._on_field, "user_data": spec.name}
        wide = round(440 * s)
        if spec.kind == "bool":
            dpg.add_checkbox(**common)
        elif spec.kind == "choice":
            labels = [CHOICE_LABELS.get(c, c) for c in spec.choices]
            dpg.add_combo(labels, width=wide, **common)
        elif spec.kind == "secret":
            dpg.add_input_text(password=True, width=wide, **common)
        elif spec.kind == "seconds":
            dpg.add_input_text(width=round(100 * s), **common)
        else:
            dpg.add_input_text(width=wide, **common)
        if spec.name == "url":
            # Next to the URL: look at the host typed and fill in the rest (net.discover).
            dpg.add_button(
                label="Detect", tag="servers/detect", callback=lambda: self.state.detect()
            )
            dpg.add_loading_indicator(
                tag="servers/detect/spinner", style=1, radius=1.2 * s, show=False
            )
        if spec.kind == "uuid":
            dpg.add_button(
                label="Generate",
                tag="servers/generate_uuid",
                callback=lambda: self.state.generate_uuid(),
            )
        elif spec.kind == "path":
            dpg.add_button(
                label="Choose…",
                tag="servers/choose_ca",
                callback=lambda: dpg.show_item("servers/dialog/ca"),
            )
            dpg.add_button(
                label="Clear",
                tag="servers/clear_ca",
                callback=lambda: self.state.set_field("ca_file", ""),
            )

    def _section_extras(self, section: str) -> None:
        if section == "Sign-in":
            dpg.add_text("", tag="servers/claims", color=SUCCESS, show=False)
            with dpg.group(horizontal=True, tag="servers/signin_row"):
                dpg.add_button(
                    label="Sign in", tag="servers/signin", callback=lambda: self.state.sign_in()
                )
                dpg.add_button(
                    label="Cancel sign-in",
                    tag="servers/signin_cancel",
                    callback=lambda: self.state.cancel_sign_in(),
                    show=False,
                )
                dpg.add_button(
                    label="Sign out",
                    tag="servers/signout",
                    callback=lambda: self.state.sign_out(),
                    show=False,
                )
                dpg.add_text("", tag="servers/signin_status", wrap=0)
        elif section == "Paths":
            dpg.add_text("", tag="servers/roots", color=MUTED)

    def _check_section(self) -> None:
        heading = dpg.add_text("Connection test")
        if self.fonts.heading is not None:
            dpg.bind_item_font(heading, self.fonts.heading)
        with dpg.group(horizontal=True):
            dpg.add_button(
                label="Test connection",
                tag="servers/test",
                callback=lambda: self.state.test_connection(),
            )
            dpg.add_button(
                label="Cancel",
                tag="servers/test_cancel",
                show=False,
                callback=lambda: self.state.cancel_test(),
            )
            dpg.add_loading_indicator(
                tag="servers/test_spinner", style=1, radius=1.2 * self.fonts.scale, show=False
            )
            dpg.add_text("", tag="servers/check/summary")
        with dpg.table(
            tag="servers/check/table",
            header_row=True,
            borders_innerH=True,
            policy=dpg.mvTable_SizingStretchProp,
            show=False,
        ):
            dpg.add_table_column(label="Result", width_fixed=True)
            dpg.add_table_column(label="Check", width_fixed=True)
            dpg.add_table_column(label="Detail", width_stretch=True)
            dpg.add_table_column(label="Time", width_fixed=True)

    def _file_dialogs(self) -> None:
        s = self.fonts.scale
        size = {"width": round(700 * s), "height": round(420 * s)}
        with dpg.file_dialog(
            tag="servers/dialog/ca",
            show=False,
            modal=True,
            callback=self._on_ca_chosen,
            label="CA certificate (PEM)",
            **size,
        ):
            dpg.add_file_extension("Certificates (*.pem *.crt *.cer){.pem,.crt,.cer}")
            dpg.add_file_extension(".*")
        with dpg.file_dialog(
            tag="servers/dialog/import",
            show=False,
            modal=True,
            callback=self._on_import_chosen,
            label="Import servers",
            **size,
        ):
            dpg.add_file_extension(".json")
            dpg.add_file_extension(".*")
        with dpg.file_dialog(
            tag="servers/dialog/export",
            show=False,
            modal=True,
            callback=self._on_export_chosen,
            label="Export servers",
            default_filename="servers",
            **size,
        ):
            dpg.add_file_extension(".json")

    def teardown(self) -> None:
        if self._disconnect is not None:
            self._disconnect()
            self._disconnect = None
        for tag in (ROOT, *_DIALOGS):
            if dpg.does_item_exist(tag):
                dpg.delete_item(tag)

    # -- callbacks (UI thread, drained by the render loop) ------------------------------

    def _on_field(self, sender: int | str, app_data: Any, name: str) -> None:
        if name == "auth_type":
            by_label = {label: value for value, label in AUTH_LABELS.items()}
            app_data = by_label.get(app_data, app_data)
        self.state.set_field(name, app_data)

    def _on_combo(self, sender: int | str, label: str, user_data: Any) -> None:
        for server_id, text in self.state.entry_labels():
            if text == label:
                self.state.choose(server_id)
                return

    def _on_link(self, *args: Any) -> None:
        link = str(dpg.get_value("servers/link"))
        if link.strip():
            dpg.set_value("servers/link", "")
            self.state.use_link(link)

    @staticmethod
    def _chosen_path(app_data: Any) -> str:
        if isinstance(app_data, dict):
            return str(app_data.get("file_path_name") or "")
        return ""

    def _on_ca_chosen(self, sender: int | str, app_data: Any) -> None:
        path = self._chosen_path(app_data)
        if path:
            self.state.set_field("ca_file", path)

    def _on_import_chosen(self, sender: int | str, app_data: Any) -> None:
        path = self._chosen_path(app_data)
        if path:
            self.state.import_from(path)

    def _on_export_chosen(self, sender: int | str, app_data: Any) -> None:
        path = self._chosen_path(app_data)
        if path:
            self.state.export_to(path)

    # -- state -> widgets ---------------------------------------------------------------

    def _on_change(self, topic: PageTopic) -> None:
        if topic == "entries":
            self._sync_entries()
        elif topic == "form" or topic == "edit":
            self._sync_values()
            self._sync_edit()
        elif topic == "check":
            self._sync_check()
        elif topic == "signin":
            self._sync_signin()
        elif topic == "detect":
            self._sync_detect()
        elif topic == "message":
            message = self.state.message
            dpg.set_value("servers/message", message.text if message else "")
            if message is not None:
                dpg.configure_item("servers/message", color=level_colour(message.level))

    def _sync_entries(self) -> None:
        pairs = self.state.entry_labels()
        self._combo_ids = [server_id for server_id, _ in pairs]
        dpg.configure_item("servers/combo", items=[label for _, label in pairs])
        current = next((label for sid, label in pairs if sid == self.state.form.id), "")
        dpg.set_value("servers/combo", current)

    def _sync_values(self) -> None:
        form = self.state.form
        for spec in FORM_FIELDS:
            value: Any = form.values[spec.name]
            if spec.name == "auth_type":
                value = AUTH_LABELS[form.auth_type]
            # Only write what differs: rewriting the field being typed in would move
            # its cursor.
            if dpg.get_value(field_tag(spec.name)) != value:
                dpg.set_value(field_tag(spec.name), value)

    def _sync_edit(self) -> None:
        state = self.state
        form = state.form
        editable = not form.read_only
        for spec in FORM_FIELDS:
            name = spec.name
            dpg.configure_item(f"servers/row/{name}", show=form.visible(name))
            dpg.configure_item(field_tag(name), enabled=editable)
            error = form.errors.get(name, "")
            dpg.set_value(f"servers/error/{name}", error)
            dpg.configure_item(f"servers/error/{name}", show=bool(error))
            warning = "" if error else form.warnings.get(name, "")
            dpg.set_value(f"servers/warning/{name}", warning)
            dpg.configure_item(f"servers/warning/{name}", show=bool(warning))
            dpg.configure_item(f"servers/detected/{name}", show=name in form.detected)
        # Secrets are never shown; the placeholder says whether one is stored.
        hint = "stored; type to replace it" if form.stored.password else ""
        dpg.configure_item(field_tag("password"), hint=hint)
        token_hint = "signed in; paste a new token to replace the session"
        dpg.configure_item(
            field_tag("token"), hint=token_hint if form.stored.session is not None else ""
        )
        for tag in ("servers/generate_uuid", "servers/choose_ca", "servers/clear_ca"):
            dpg.configure_item(tag, enabled=editable)
        auth = form.auth_type
        dpg.configure_item("servers/section/Sign-in", show=auth != "none")
        claims = form.claims_text()
        dpg.set_value("servers/claims", claims)
        dpg.configure_item("servers/claims", show=bool(claims))
        self._sync_signin()
        roots = form.roots()
        dpg.set_value(
            "servers/roots", "  ".join(f"{k}: {v}" for k, v in roots.items()) if roots else ""
        )
        kinds = {
            "user": "Your server",
            "managed": f"Managed by your organisation ({form.source}): read-only",
            "preset": "Preset: saved into your servers when you save it",
            "new": "New server: not saved yet",
        }
        active = " · in use" if state.is_active else ""
        dpg.set_value("servers/kind", kinds[form.kind] + active)
        dpg.configure_item("servers/save", enabled=state.can_save)
        dpg.configure_item("servers/test", enabled=state.can_test)
        dpg.configure_item("servers/detect", enabled=state.can_detect)
        dpg.configure_item("servers/delete", show=form.kind == "user")
        dpg.configure_item("servers/duplicate", show=form.kind != "new")
        unsaved = form.unsaved_description()
        dpg.set_value("servers/unsaved", "● Unsaved changes" if unsaved else "")
        title = "Zhiva Viewer" + (" — unsaved changes" if unsaved else "")
        dpg.set_viewport_title(title)

    def _sync_signin(self) -> None:
        state = self.state
        form = state.form
        signin = state.signin
        waiting = signin.status == "waiting"
        zhiva = form.auth_type == "zhiva"
        dpg.configure_item("servers/signin", show=zhiva and not waiting)
        dpg.configure_item("servers/signin_cancel", show=waiting)
        has_session = form.stored.session is not None and form.auth_type in ("token", "zhiva")
        dpg.configure_item("servers/signout", show=has_session and not waiting)
        text = signin.detail
        if waiting and signin.url:
            text += f" If no browser opened, open: {signin.url}"
        dpg.set_value("servers/signin_status", text)
        # An empty row would leave a gap in the form.
        dpg.configure_item("servers/signin_row", show=zhiva or waiting or has_session or bool(text))
        dpg.configure_item(
            "servers/signin_status", color=ERROR if signin.status == "failed" else MUTED
        )

    def _sync_detect(self) -> None:
        detection = self.state.detection
        running = detection.status == "running"
        dpg.configure_item("servers/detect/spinner", show=running)
        dpg.configure_item("servers/detect", enabled=self.state.can_detect)
        dpg.set_value("servers/detect/summary", detection.summary)
        dpg.configure_item("servers/detect/summary", show=bool(detection.summary))
        colour = SUCCESS if detection.found else (MUTED if running else WARNING)
        dpg.configure_item("servers/detect/summary", color=colour)
        dpg.set_value("servers/detect/findings", "\n".join(detection.lines))
        dpg.configure_item("servers/detect/findings", show=bool(detection.lines))

    def _sync_check(self) -> None:
        check = self.state.check
        running = check.status == "running"
        dpg.configure_item("servers/test_spinner", show=running)
        dpg.configure_item("servers/test_cancel", show=running)
        dpg.configure_item("servers/test", enabled=self.state.can_test)
        summary = "Testing…" if running else check.summary
        dpg.set_value("servers/check/summary", summary)
        colour = (
            ERROR if check.failed or (check.status == "done" and not check.results) else SUCCESS
        )
        dpg.configure_item(
            "servers/check/summary", color=colour if check.status == "done" else MUTED
        )
        table = "servers/check/table"
        for row in dpg.get_item_children(table, 1) or []:
            dpg.delete_item(row)
        dpg.configure_item(table, show=bool(check.results))
        for result in check.results:
            parts = [result.detail] if result.detail else []
            if result.fallback:
                parts.append(f"will use {result.fallback}")
            if result.fix:
                parts.append(f"fix: {result.fix}")
            detail = " — ".join(parts)
            latency = "" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"
            key = result.name.replace(" ", "_")
            with dpg.table_row(parent=table, tag=f"servers/check/row/{key}"):
                dpg.add_text(
                    _STATUS_MARK[result.status],
                    color=level_colour(result.status),
                    tag=f"servers/check/status/{key}",
                )
                dpg.add_text(result.name)
                dpg.add_text(detail, wrap=0, tag=f"servers/check/detail/{key}")
                dpg.add_text(latency, color=MUTED)
