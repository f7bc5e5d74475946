"""Linux desktop integration: build/install-desktop.sh installs the file entry (DICOM,
zip) and registers the link handler.

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


LINK_ENTRY = "zhiva-viewer-link.desktop"


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser["Desktop Entry"]


def _desktop(tmp_path: Path, name: str = "zhiva-viewer.desktop") -> configparser.SectionProxy:
    return _entry(tmp_path / "data" / "applications" / name)


def test_the_desktop_files_declare_dicom_zip_and_the_link_scheme() -> None:
    files = _entry(ROOT / "build" / "zhiva-viewer.desktop")
    assert files["Type"] == "Application"
    assert files["MimeType"].split(";") == ["application/dicom", "application/zip", ""]
    assert files["Exec"] == "zhiva-viewer %F"  # %F: every chosen file, as paths
    assert "NoDisplay" not in files  # the one in the applications menu
    link = _entry(ROOT / "build" / LINK_ENTRY)
    assert link["MimeType"] == f"{SCHEME};"
    assert link["Exec"] == "zhiva-viewer %u"  # %u: the clicked link is the argument
    assert link["NoDisplay"] == "true"


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
    assert _desktop(tmp_path)["Exec"] == f'"{installed}" %F'
    assert _desktop(tmp_path, LINK_ENTRY)["Exec"] == f'"{installed}" %u'
    lines = mimeapps.read_text().splitlines()
    assert f"{SCHEME}={LINK_ENTRY}" in lines
    assert f"{SCHEME}=old-viewer.desktop" not in lines
    assert "text/html=firefox.desktop" in lines and "image/png=eog.desktop" in lines
    handler_section = lines[: lines.index("[Added Associations]")]
    assert f"{SCHEME}={LINK_ENTRY}" in handler_section
    # No file type is taken over: DICOM and zip files only offer the app.
    assert not any(line.startswith(("application/dicom=", "application/zip=")) for line in lines)

    done = subprocess.run([str(SCRIPT), "--uninstall"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not installed.exists()
    assert not (tmp_path / "data" / "applications" / "zhiva-viewer.desktop").exists()
    assert not (tmp_path / "data" / "applications" / LINK_ENTRY).exists()
    assert f"{SCHEME}={LINK_ENTRY}" not in mimeapps.read_text()
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
    assert record.read_text().split() == ["default", LINK_ENTRY, SCHEME]
    assert not (tmp_path / "config" / "mimeapps.list").exists()


def test_install_refuses_a_missing_binary(tmp_path: Path) -> None:
    env = _env(tmp_path, "/usr/bin:/bin")
    done = subprocess.run(
        [str(SCRIPT), str(tmp_path / "nope")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "build it first" in done.stderr
