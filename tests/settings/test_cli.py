"""The command line, in process: grammar, exit codes, and every servers command."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from net import SERVER_FIELDS
from viewer.cli import FIELD_FLAGS, main
from viewer.settings import LOCAL_SERVER_PRESET_ID, FileSecretStore, resolve_paths

CaptureFixture = pytest.CaptureFixture[str]


def run(
    capsys: CaptureFixture,
    *args: str,
    stdin: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config_dir(isolated_env: Path) -> Path:
    return isolated_env


def _settings(config_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((config_dir / "settings.json").read_text())
    return document


def test_help_documents_the_whole_grammar(capsys: CaptureFixture) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for text in ("[--config-dir DIR] [--demo] [LINK | PATH...]", "DICOMDIRs or zip archives",
                 "--version | --self-check | --smoke PNG",
                 "servers add NAME --url URL", "servers link LINK [--ca-file F]", "servers test NAME",
                 "2 bad usage or no display"):  # fmt: skip
        assert text in out
    code, out, _ = run(capsys, "servers", "add", "--help")
    assert code == 0
    for spec in FIELD_FLAGS:
        assert spec.flag in out
    assert "--password-stdin" in out and "--token-stdin" in out and "--from" in out


def test_the_flags_are_the_field_catalogue() -> None:
    # One catalogue (tests/net/test_fields.py checks it is complete): every field but the
    # positional name and the stdin secrets is a flag.
    flagged = {spec.name for spec in SERVER_FIELDS if not spec.is_secret} - {"name"}
    assert {spec.name for spec in FIELD_FLAGS} == flagged


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-flag"],
        ["servers"],
        ["servers", "frobnicate"],
        ["servers", "add", "X", "--auth", "kerberos", "--url", "https://x.org"],
        ["servers", "add", "X"],  # neither --url nor --from
        ["servers", "add", "X", "--url", "https://x.org", "--read-timeout", "soon"],
        ["--version", "--self-check"],
        ["servers", "add", "X", "--url", "https://x.org", "--password-stdin"],  # not basic
    ],
)
def test_bad_usage_exits_2(capsys: CaptureFixture, args: list[str]) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "error" in err


def test_smoke_without_a_display_exits_2(
    capsys: CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # With a display it opens the demo (tests/gui/test_smoke_cli.py).
    monkeypatch.delenv("DISPLAY", raising=False)
    code, _, err = run(capsys, "--smoke", str(tmp_path / "out.png"))
    assert code == 2
    assert "no X display" in err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("args", [[], ["--demo"]])
def test_the_window_without_a_display_exits_2_saying_how_to_run_it(
    capsys: CaptureFixture, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "no X display (DISPLAY is not set)" in err and "xvfb-run" in err


@pytest.mark.parametrize(
    "args",
    [
        ["servers", "link", "zhiva-viewer://oauth?token=tok-secret-123", "--ca-file", "x.pem"],
        ["https://h/auth/oauth?token=tok-secret-123"],
    ],
)
def test_bad_link_exits_1_without_echoing_the_token(
    capsys: CaptureFixture, args: list[str]
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1
    assert "not a valid sign-in token" in err and "tok-secret-123" not in out + err


def test_version(capsys: CaptureFixture) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("zhiva-viewer ")


def test_self_check(capsys: CaptureFixture, config_dir: Path) -> None:
    code, out, _ = run(capsys, "--self-check")
    assert code == 0, out
    assert f"[pass] settings directory {config_dir} is writable" in out
    assert "[pass] server presets: Local Server" in out
    assert "[pass] passwords and tokens: the file" in out
    assert "self-check: all checks passed." in out
    assert not (config_dir / "settings.json").exists()  # checking changes nothing


def test_first_launch_list_offers_the_preset(capsys: CaptureFixture, config_dir: Path) -> None:
    code, out, _ = run(capsys, "servers", "list")
    assert code == 0
    assert "Local Server" in out and "preset (not saved)" in out
    assert "No server is selected yet" in out
    assert not (config_dir / "settings.json").exists()


def test_invalid_fields_are_all_printed_and_exit_1(
    capsys: CaptureFixture, config_dir: Path
) -> None:
    code, _, err = run(capsys, "servers", "add", "Bad", "--url", "http://pacs", "--auth", "basic",
                       "--uuid", "not-a-uuid", "--wado-postfix", "a b", "--connect-timeout", "0")  # fmt: skip
    assert code == 1
    for field in ("url:", "username:", "uuid:", "wado_postfix:", "connect_timeout:"):
        assert f"  {field}" in err
    assert not (config_dir / "settings.json").exists()


def test_add_show_edit_select_remove(
    capsys: CaptureFixture, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        capsys, "servers", "add", "Hospital", "--url", "https://pacs.example.org/dicom-web",
        "--auth", "basic", "--username", "bob", "--password-stdin", "--qido-postfix", "rs",
        "--no-lazy-load", "--can-store", "--uuid", "new", "--ca-file", "certs/ca.pem",
        stdin="pa55-word\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 1  # the CA file does not exist: refused like the form would
    assert "ca_file:" in err
    (config_dir / "ca.pem").write_text("x")
    monkeypatch.chdir(config_dir)
    code, out, err = run(
        capsys, "servers", "add", "Hospital", "--url", "https://pacs.example.org/dicom-web",
        "--auth", "basic", "--username", "bob", "--password-stdin", "--qido-postfix", "rs",
        "--no-lazy-load", "--can-store", "--uuid", "new", "--ca-file", "ca.pem",
        stdin="pa55-word\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert "Added 'Hospital'" in out and "readable only by your user account" in err
    (saved,) = _settings(config_dir)["servers"]
    assert (
        saved["qido_postfix"] == "rs" and saved["lazy_load"] is False and saved["can_store"] is True
    )
    assert saved["ca_file"] == str(config_dir / "ca.pem")  # absolute: works from any cwd
    assert len(saved["uuid"]) == 36
    assert "pa55-word" not in (config_dir / "settings.json").read_text()
    assert (
        FileSecretStore(resolve_paths(config_dir).secrets_file).get(saved["id"], "password")
        == "pa55-word"
    )

    code, out, _ = run(capsys, "servers", "show", "hospital")
    assert code == 0
    assert (
        "qido_postfix: rs" in out
        and "password: stored in the file" in out
        and "pa55-word" not in out
    )

    code, out, err = run(
        capsys, "servers", "edit", "Hospital", "--name", "Hospital 2", "--lazy-load"
    )
    assert code == 0, err
    assert _settings(config_dir)["servers"][0]["name"] == "Hospital 2"
    assert _settings(config_dir)["servers"][0]["lazy_load"] is True
    code, _, err = run(capsys, "servers", "edit", "Hospital 2")
    assert code == 2 and "nothing to change" in err

    code, out, _ = run(capsys, "servers", "select", "Hospital 2")
    assert code == 0 and _settings(config_dir)["selected_server_id"] == saved["id"]
    code, out, _ = run(capsys, "servers", "list")
    assert any(line.startswith("*") and "Hospital 2" in line for line in out.splitlines())

    code, out, _ = run(capsys, "servers", "remove", "Hospital 2")
    assert code == 0 and _settings(config_dir)["servers"] == []
    assert _settings(config_dir)["selected_server_id"] is None
    assert (
        FileSecretStore(resolve_paths(config_dir).secrets_file).get(saved["id"], "password") is None
    )
    code, _, err = run(capsys, "servers", "remove", "Hospital 2")
    assert code == 1 and "No server called" in err


def test_add_from_the_preset_changes_only_what_is_given(
    capsys: CaptureFixture, config_dir: Path
) -> None:
    code, _, err = run(capsys, "servers", "add", "Ward PACS", "--from", "Local Server",
                       "--url", "https://192.168.1.20/zhiva/pacs")  # fmt: skip
    assert code == 0, err
    (saved,) = _settings(config_dir)["servers"]
    assert saved["wado_uri_postfix"] == "/zhiva/wado" and saved["id"] != LOCAL_SERVER_PRESET_ID


def test_export_and_import(
    capsys: CaptureFixture, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "servers", "add", "A", "--url", "https://a.example.org")
    run(capsys, "servers", "add", "B", "--url", "https://b.example.org", "--auth", "basic",
        "--username", "u", "--password-stdin", stdin="pw-B-1234\n", monkeypatch=monkeypatch)  # fmt: skip
    target = tmp_path / "export.json"
    code, out, _ = run(capsys, "servers", "export", str(target))
    assert code == 0 and "Exported 2 server(s)" in out
    assert "pw-B-1234" not in target.read_text()
    assert json.loads(target.read_text())["format"] == "zhiva-viewer/servers"
    code, out, _ = run(capsys, "servers", "export", "-")
    assert code == 0 and json.loads(out)["servers"][0]["name"] == "A"

    other = tmp_path / "other"
    code, out, err = run(capsys, "--config-dir", str(other), "servers", "import", str(target))
    assert code == 0, err
    assert "Imported 2 server(s)" in out
    assert [s["name"] for s in _settings(other)["servers"]] == ["A", "B"]
    code, out, _ = run(capsys, "servers", "--config-dir", str(other), "import", "-",
                       stdin=target.read_text(), monkeypatch=monkeypatch)  # fmt: skip
    assert code == 0 and "Already there, unchanged: 'A', 'B'" in out

    (tmp_path / "bad.json").write_text("{nope")
    code, _, err = run(capsys, "servers", "import", str(tmp_path / "bad.json"))
    assert code == 1 and "not valid JSON" in err
    code, _, err = run(capsys, "servers", "import", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read" in err


def test_managed_servers_in_the_cli(
    capsys: CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = tmp_path / "xdg" / "zhiva-viewer" / "servers.json"  # XDG_CONFIG_DIRS of the fixture
    org.parent.mkdir(parents=True)
    org.write_text(
        json.dumps({"servers": [{"id": "org1", "name": "Hospital", "url": "https://h.org"}]})
    )
    code, out, _ = run(capsys, "servers", "list")
    assert f"managed ({org})" in out
    code, _, err = run(capsys, "servers", "edit", "Hospital", "--url", "https://x.org")
    assert code == 1 and "managed by your organisation" in err
    code, _, err = run(
        capsys, "servers", "add", "My Hospital", "--from", "Hospital", "--postfix", "x"
    )
    assert code == 0, err
    code, _, _ = run(capsys, "servers", "select", "Hospital")
    assert code == 0


def test_a_corrupt_settings_file_is_reported_not_fatal(
    capsys: CaptureFixture, config_dir: Path
) -> None:
    config_dir.mkdir(parents=True)
    (config_dir / "settings.json").write_text("{corrupt")
    code, out, err = run(capsys, "servers", "list")
    assert code == 0
    assert "moved to" in err and "Local Server" in out
    assert [p.read_text() for p in config_dir.glob("settings.json.corrupt-*")] == ["{corrupt"]


def test_a_newer_settings_file_refuses_changes(capsys: CaptureFixture, config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    data = json.dumps(
        {"schema_version": 99, "servers": [{"id": "a", "name": "A", "url": "https://a.org"}]}
    )
    (config_dir / "settings.json").write_text(data)
    code, out, _ = run(capsys, "servers", "list")
    assert code == 0 and "A" in out
    code, _, err = run(capsys, "servers", "add", "B", "--url", "https://b.org")
    assert code == 1 and "newer Zhiva Viewer" in err
    assert (config_dir / "settings.json").read_text() == data


def test_test_without_a_stored_password_fails_clearly(capsys: CaptureFixture) -> None:
    run(
        capsys,
        "servers",
        "add",
        "P",
        "--url",
        "https://p.example.org",
        "--auth",
        "basic",
        "--username",
        "u",
    )
    code, _, err = run(capsys, "servers", "test", "P")
    assert code == 1 and "no password is stored" in err.lower()


def test_test_reports_each_check_and_exits_1_on_failure(capsys: CaptureFixture) -> None:
    # Port 1 on loopback refuses at once: a real failure, no waiting.
    run(
        capsys,
        "servers",
        "add",
        "Down",
        "--url",
        "https://127.0.0.1:1/dicom-web",
        "--connect-timeout",
        "2",
    )
    code, out, _ = run(capsys, "servers", "test", "Down")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("[fail] reachable") and "fix:" in lines[0]
    assert "[n/a] TLS" in out and out.rstrip().endswith("check(s) failed.")


def test_config_dir_flag_beats_the_env_var(
    capsys: CaptureFixture, tmp_path: Path, config_dir: Path
) -> None:
    flag_dir = tmp_path / "flagged"
    code, _, _ = run(
        capsys, "--config-dir", str(flag_dir), "servers", "add", "A", "--url", "https://a.org"
    )
    assert code == 0
    assert (flag_dir / "settings.json").exists() and not (config_dir / "settings.json").exists()
    assert (flag_dir / "logs" / "zhiva-viewer.log").exists()


def test_cache_info_and_clear_use_the_config_dir_and_the_saved_budgets(
    capsys: CaptureFixture, config_dir: Path
) -> None:
    from viewer.loader import InstanceDiskCache
    from viewer.settings import CacheSettings, ServerRegistry

    registry = ServerRegistry.open(resolve_paths(config_dir), fetch_organisation=False)
    registry.set_cache_settings(CacheSettings(memory_mib=512, disk_mib=100))
    disk = InstanceDiskCache(config_dir / "cache" / "instances")
    disk.put("https://pacs.example.org/rs", "1.2.3", b"x" * 1500)
    disk.put("https://pacs.example.org/rs", "1.2.4", b"y" * 1500)
    code, out, _ = run(capsys, "--config-dir", str(config_dir), "cache", "info")
    assert code == 0
    assert str(config_dir / "cache" / "instances") in out
    assert "3 KB in 2 instances, budget 100 MiB" in out
    assert "budget 512 MiB" in out
    code, out, _ = run(capsys, "cache", "clear", "--config-dir", str(config_dir))
    assert code == 0 and "Cleared 3 KB" in out
    assert len(InstanceDiskCache(config_dir / "cache" / "instances")) == 0
    code, _, err = run(capsys, "cache")
    assert code == 2 and "COMMAND" in err


# --- nothing but one line of ours reaches the user (issue 13, item 8) --------------------


def _unwritable_dir(tmp_path: Path) -> Path:
    """A config dir this process cannot create or write, even as root."""
    import os

    if os.geteuid() != 0:
        parent = tmp_path / "read-only"
        parent.mkdir()
        parent.chmod(0o500)
        return parent / "config"
    # Root ignores modes; sysfs refuses new directories to everyone (EPERM).
    candidate = Path("/sys/zhiva-viewer-test-config")
    try:
        candidate.mkdir()
    except PermissionError:
        return candidate
    candidate.rmdir()
    pytest.skip("no directory here refuses writes to this user")


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if not line.startswith("note: ")]


def test_servers_add_in_a_folder_that_cannot_be_written_is_a_one_line_error(
    capsys: CaptureFixture, tmp_path: Path
) -> None:
    config = _unwritable_dir(tmp_path)
    code, out, err = run(
        capsys, "--config-dir", str(config), "servers", "add", "Ward",
        "--url", "https://ward.example.org/rs",
    )  # fmt: skip
    assert code == 1, out + err
    assert "Traceback" not in err
    (line,) = _error_lines(err)
    assert line.startswith("error: ") and str(config) in line and "cannot be saved" in line
    # Reading still works: the list is shown (empty), saying nothing can be saved.
    code, out, err = run(capsys, "--config-dir", str(config), "servers", "list")
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (RuntimeError("a bug of ours"), "unexpected error (RuntimeError: a bug of ours)"),
        (MemoryError(), "out of memory"),
    ],
)
def test_an_unexpected_error_is_one_line_and_the_log_keeps_the_traceback(
    capsys: CaptureFixture,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: BaseException,
    said: str,
) -> None:
    from viewer.cli import _servers

    def broken(registry: object, args: object) -> int:
        raise failure

    monkeypatch.setitem(_servers._COMMANDS, "list", broken)
    code, out, err = run(capsys, "servers", "list")
    assert code == 1 and out == ""
    (line,) = _error_lines(err)
    assert line.startswith("error: ") and said in line and "Traceback" not in err
    log = (config_dir / "logs" / "zhiva-viewer.log").read_text()
    assert "Traceback" in log and type(failure).__name__ in log  # bugs stay visible
    assert str(config_dir / "logs") in line  # ... and the user is told where
