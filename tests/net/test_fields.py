"""The one catalogue of server fields: complete, consistent, and what validation uses."""

from __future__ import annotations

import msgspec
import pytest

from net import SECRET_FIELDS, SERVER_FIELDS, ServerConfig, validate_config
from net._fields import field_named


def test_the_catalogue_has_every_server_field_and_the_two_secrets() -> None:
    names = [spec.name for spec in SERVER_FIELDS]
    assert len(names) == len(set(names))
    assert set(names) == (set(ServerConfig.__struct_fields__) - {"id"}) | {"password", "token"}
    assert set(SECRET_FIELDS) == {"password", "token"}


def test_every_field_is_described_once_for_the_form_and_the_command_line() -> None:
    labels = [spec.label for spec in SERVER_FIELDS]
    flags = [spec.flag for spec in SERVER_FIELDS if spec.flag]
    assert len(labels) == len(set(labels)) and len(flags) == len(set(flags))
    for spec in SERVER_FIELDS:
        assert spec.help and len(spec.help) < 100, spec.name
        # Every field but the positional name can be set from the command line.
        assert spec.flag.startswith("--") or spec.name == "name", spec.name
        assert (spec.kind == "choice") == bool(spec.choices), spec.name


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("url", "http://pacs.example.org", "https://"),
        ("postfix", "a b", "may contain only"),
        ("uuid", "1234", "not a UUID"),
        ("read_timeout", 0.0, "between 0 and 3600"),
        ("ca_file", "/nonexistent/ca.pem", "does not exist"),
        ("image_rendering", "jpeg", "must be one of"),
    ],
)
def test_the_field_kind_decides_the_check(name: str, value: object, fragment: str) -> None:
    message = field_named(name).check(value)
    assert message is not None and fragment in message
    # validate_config reports the same message under the field's name.
    config = ServerConfig(name="x", url="https://pacs.example.org")
    assert fragment in validate_config(msgspec.structs.replace(config, **{name: value}))[name]


def test_required_for_an_authentication_type_names_it() -> None:
    message = field_named("username").check("", auth_type="basic")
    assert message == "A user name is required for Basic authentication."
    assert field_named("username").check("", auth_type="none") is None
