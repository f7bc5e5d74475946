"""Linux desktop integration: build/install-desktop.sh registers the link handler.

Run in a private HOME/XDG tree with a stand-in binary; once without xdg-utils (the
script writes mimeapps.list itself) and once with an `xdg-mime` that records its call.
"""

from __future__ import annotations

import configparser
import os
import subprocess
from pathlib import Path

from tests.packaging.conftest import ROOT

SCRIPT = ROOT / "build" / "install-desktop.sh"
SCHEME = "x-scheme-handler/zhiva-viewer"


def _env(tmp_path: Path, path: str) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ZHIVA_BIN_DIR": str(tmp_path / "home dir" / "bin"),  # a space, as in real homes
        "PATH": path,
    }


def _fake_binary(tmp_path: Path) -> Path:
    binary = tmp_path / "zhiva-viewer-built"
    binary.write_text("#!/bin/sh\necho fake\n")
    binary.chmod(0o755)
    return binary


def _desktop(tmp_path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(tmp_path / "data" / "applications" / "zhiva-viewer.desktop")
    return parser["Desktop Entry"]


def test_the_desktop_file_declares_the_link_scheme() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "build" / "zhiva-viewer.desktop")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["MimeType"] == f"{SCHEME};"
    assert entry["Exec"] == "zhiva-viewer %u"  # %u: the clicked link is the argument


def test_install_without_xdg_utils_writes_mimeapps_and_uninstall_removes_it(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, "/usr/bin:/bin")
    mimeapps = tmp_path / "config" / "mimeapps.list"
    mimeapps.parent.mkdir(parents=True)
    mimeapps.write_text(
        "[Default Applications]\ntext/html=firefox.desktop\n"
        f"{SCHEME}=old-viewer.desktop\n\n[Added Associations]\nimage/png=eog.desktop\n"
    )
    done = subprocess.run(
        [str(SCRIPT), str(_fake_binary(tmp_path))], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "home dir" / "bin" / "zhiva-viewer"
    assert installed.read_text() == "#!/bin/sh\necho fake\n" and os.access(installed, os.X_OK)
    assert _desktop(tmp_path)["Exec"] == f'"{installed}" %u'
    lines = mimeapps.read_text().splitlines()
    assert f"{SCHEME}=zhiva-viewer.desktop" in lines
    assert f"{SCHEME}=old-viewer.desktop" not in lines
    assert "text/html=firefox.desktop" in lines and "image/png=eog.desktop" in lines
    handler_section = lines[: lines.index("[Added Associations]")]
    assert f"{SCHEME}=zhiva-viewer.desktop" in handler_section

    done = subprocess.run([str(SCRIPT), "--uninstall"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not installed.exists()
    assert not (tmp_path / "data" / "applications" / "zhiva-viewer.desktop").exists()
    assert f"{SCHEME}=zhiva-viewer.desktop" not in mimeapps.read_text()
    assert "text/html=firefox.desktop" in mimeapps.read_text()


def test_install_uses_xdg_mime_when_there(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    record = tmp_path / "xdg-mime.args"
    fake = tools / "xdg-mime"
    fake.write_text(f'#!/bin/sh\necho "$@" > "{record}"\n')
    fake.chmod(0o755)
    env = _env(tmp_path, f"{tools}:/usr/bin:/bin")
    done = subprocess.run(
        [str(SCRIPT), str(_fake_binary(tmp_path))], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert record.read_text().split() == ["default", "zhiva-viewer.desktop", SCHEME]
    assert not (tmp_path / "config" / "mimeapps.list").exists()


def test_install_refuses_a_missing_binary(tmp_path: Path) -> None:
    env = _env(tmp_path, "/usr/bin:/bin")
    done = subprocess.run(
        [str(SCRIPT), str(tmp_path / "nope")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "build it first" in done.stderr
