"""The entry point's fast path: a plain launch skips the full command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from viewer.__main__ import plain_launch


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (None, False, ())),
        (["--demo"], (None, True, ())),
        (["--config-dir", "/x"], ("/x", False, ())),
        (["--config-dir=/x", "--demo"], ("/x", True, ())),
        (["servers", "list"], None),
        (["--version"], None),
        (["--help"], None),
        (["https://h/auth/oauth?token=a.b.c"], None),  # links need the token checks
        (["zhiva-viewer://oauth?token=a.b.c"], None),
        (["--config-dir"], None),  # missing value: the full parser reports it
        (["--config-dir="], None),
        (["--demo", "--demo"], None),
        (["/no/such/file.dcm"], None),  # the full parser says it is missing
    ],
)
def test_plain_launch(
    args: list[str], expected: tuple[str | None, bool, tuple[str, ...]] | None
) -> None:
    assert plain_launch(args) == expected


def test_plain_launch_takes_existing_paths(tmp_path: Path) -> None:
    folder, archive = tmp_path / "CT", tmp_path / "study.zip"
    folder.mkdir()
    archive.write_bytes(b"PK\x05\x06" + bytes(18))
    servers = tmp_path / "servers"  # a file named like the command, after "--"
    servers.write_text("x")
    assert plain_launch([str(folder), str(archive)]) == (None, False, (str(folder), str(archive)))
    assert plain_launch(["--config-dir", "/c", str(folder)]) == ("/c", False, (str(folder),))
    assert plain_launch(["--", str(servers), "-odd"]) is None  # "-odd" does not exist
    (tmp_path / "-odd").write_text("x")
    dashed = str(tmp_path / "-odd")
    assert plain_launch(["--", str(servers), dashed]) == (None, False, (str(servers), dashed))
    # A file manager's file:// URI is a path too; a link next to paths is not plain.
    uri = f"file://{folder}"
    assert plain_launch([uri]) == (None, False, (uri,))
    assert plain_launch([str(folder), "https://h/auth/oauth?token=a"]) is None


def test_the_command_line_tells_links_from_paths(tmp_path: Path) -> None:
    from viewer._launch import is_link, local_path

    assert is_link("https://h/auth/oauth?token=a") and is_link("HTTP://h/x")
    assert is_link("zhiva-viewer://oauth?token=a") and is_link("zhiva-viewer:oauth?token=a")
    assert is_link("ftp://h/x")  # a URL, never a path
    assert not is_link("C:\\Studies\\CT") and not is_link("study.zip")
    assert not is_link("file:///tmp/a%20b.dcm")
    assert local_path("file:///tmp/a%20b.dcm") == Path("/tmp/a b.dcm")
    assert local_path("rel/x.dcm") == Path("rel/x.dcm")


def test_plain_launch_does_not_import_the_command_line_or_the_network_layer() -> None:
    code = (
        "import sys, viewer.__main__ as m, viewer.app.main, viewer.settings._logging;"
        "print(sorted(n for n in ('viewer.cli', 'net._client', 'pydicom', 'httpx', 'argparse')"
        " if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_paths_reach_the_window_through_either_road(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import viewer.app.main as app_main
    from viewer.__main__ import main

    calls: list[dict[str, object]] = []

    def run(**kwargs: object) -> int:
        calls.append(kwargs)
        return 0

    monkeypatch.setattr(app_main, "run", run)
    study = tmp_path / "study.zip"
    study.write_bytes(b"PK\x05\x06" + bytes(18))
    config = str(tmp_path / "config")
    assert main(["--config-dir", config, str(study)]) == 0  # the fast path
    assert calls[-1]["paths"] == [study] and calls[-1]["config_dir"] == config
    assert main(["--config-dir", config, f"file://{study}"]) == 0
    assert calls[-1]["paths"] == [study]
    # A missing path: the full command line says which, before any window opens.
    count = len(calls)
    assert main(["--config-dir", config, str(study), str(tmp_path / "gone.dcm")]) == 2
    assert f"{tmp_path / 'gone.dcm'}: no such file or folder" in capsys.readouterr().err
    link = "https://h/auth/oauth?token=a.b.c"
    assert main(["--config-dir", config, str(study), link]) == 2
    assert "not both" in capsys.readouterr().err
    assert len(calls) == count
