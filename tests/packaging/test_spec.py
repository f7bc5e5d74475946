"""The PyInstaller spec, without building: it declares every decoder plugin pydicom
would load here, the assets, and keeps PyInstaller's output outside build/'s sources."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from render import decoder_status
from tests.packaging.conftest import ROOT
from viewer.cli import SELF_CHECK_SYNTAXES

SPEC = ROOT / "build" / "zhiva-viewer.spec"


class _Recorded:
    """A stand-in for PyInstaller's spec classes; the Analysis "finds" a few modules."""

    def __init__(self, kind: str, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]):
        self.kind = kind
        self.calls = calls
        self.pure = [("pydicom.dataset", "", "PYMODULE"), ("jpeg_ls.CharLS", "", "PYMODULE")]
        self.binaries = [("imagecodecs/_jpeg8.abi3.so", "", "EXTENSION")]
        self.scripts: list[Any] = []
        self.datas: list[tuple[str, str, str]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> _Recorded:
        self.calls.append((self.kind, args, kwargs))
        return self


def _evaluate_spec(monkeypatch: pytest.MonkeyPatch, build: str, workpath: Path) -> list[Any]:
    """The spec's calls with the default environment (gdcm bundled)."""
    monkeypatch.delenv("ZHIVA_WITH_GDCM", raising=False)
    return _run_spec(monkeypatch, build, workpath)


def _run_spec(monkeypatch: pytest.MonkeyPatch, build: str, workpath: Path) -> list[Any]:
    pytest.importorskip("PyInstaller", reason="PyInstaller is in the test extra")
    monkeypatch.setenv("ZHIVA_BUILD", build)
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    scope: dict[str, Any] = {
        "SPECPATH": str(SPEC.parent),
        "__file__": str(SPEC),
        "workpath": str(workpath),
    }
    for kind in ("Analysis", "PYZ", "EXE", "COLLECT"):
        scope[kind] = _Recorded(kind, calls)
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), scope)
    calls.append(("scope", (), scope))
    return calls


def _analysis(monkeypatch: pytest.MonkeyPatch, workpath: Path) -> dict[str, Any]:
    calls = _evaluate_spec(monkeypatch, "both", workpath)
    (kwargs,) = [kw for kind, _, kw in calls if kind == "Analysis"]
    return kwargs


def test_every_decoder_plugin_in_use_here_is_a_hidden_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pydicom.pixels.decoders.base import get_decoder

    hidden = set(_analysis(monkeypatch, tmp_path)["hiddenimports"])
    needed: set[str] = set()
    for _, ts in SELF_CHECK_SYNTAXES:
        status = decoder_status(ts)  # registers the imagecodecs plugin
        decoder = get_decoder(ts)
        for label in status.plugins:
            needed.add(decoder._available[label].__module__)
    assert "render._imagecodecs_plugin" in needed
    assert "gdcm" in hidden  # the only decoder of colour JPEG lossless here
    assert needed <= hidden, needed - hidden
    # imagecodecs imports each codec's extension by name, on first use.
    assert {"imagecodecs._jpeg8", "imagecodecs._jpeg2k", "imagecodecs._jpegls"} <= hidden
    for module in ("imagecodecs._jpeg8", "imagecodecs._jpeg2k", "imagecodecs._jpegls"):
        assert importlib.util.find_spec(module) is not None


def test_the_assets_and_the_plugin_metadata_are_bundled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    analysis = _analysis(monkeypatch, tmp_path)
    targets = {dest for _, dest in analysis["datas"]}
    sources = {Path(src) for src, dest in analysis["datas"] if dest == "assets"}
    assert sources == {ROOT / "assets"}
    # pylibjpeg finds its plugins through entry points: their metadata must be there.
    assert any(t.startswith("pylibjpeg_openjpeg-") for t in targets), targets
    assert any(t.startswith("pylibjpeg_rle-") for t in targets), targets
    assert "tkinter" in analysis["excludes"] and "gdcm" not in analysis["excludes"]
    monkeypatch.setenv("ZHIVA_WITH_GDCM", "0")
    without = [kw for kind, _, kw in _run_spec(monkeypatch, "both", tmp_path) if kind == "Analysis"]
    assert "gdcm" in without[0]["excludes"] and "gdcm" not in without[0]["hiddenimports"]


@pytest.mark.parametrize(
    ("build", "outputs"),
    [("onefile", {"EXE"}), ("onedir", {"EXE", "COLLECT"}), ("both", {"EXE", "COLLECT"})],
)
def test_the_build_kind_selects_the_outputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, build: str, outputs: set[str]
) -> None:
    calls = _evaluate_spec(monkeypatch, build, tmp_path)
    assert {kind for kind, _, _ in calls} - {"Analysis", "PYZ", "scope"} == outputs
    exes = [kw for kind, _, kw in calls if kind == "EXE"]
    assert len(exes) == (2 if build == "both" else 1)


def test_the_build_script_writes_outside_build_and_refuses_bad_usage() -> None:
    script = (ROOT / "build" / "build.sh").read_text()
    assert "--distpath dist --workpath dist/pyinstaller-work" in script
    done = subprocess.run(
        [str(ROOT / "build" / "build.sh"), "everything"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert done.returncode == 2 and "usage" in done.stderr


def test_the_licences_of_what_is_bundled_go_along(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = _evaluate_spec(monkeypatch, "onedir", workpath=tmp_path)
    (scope,) = [kw for kind, _, kw in calls if kind == "scope"]
    analysis = scope["Analysis"]
    targets = {dest for dest, _, kind in analysis.datas if kind == "DATA"}
    assert any(t.startswith("licenses/pydicom/") and "LICENSE" in t for t in targets), targets
    assert any(t.startswith("licenses/imagecodecs/") for t in targets), targets
    index = (tmp_path / "THIRD-PARTY-LICENSES.txt").read_text()
    # pyjpegls ships no licence file: the index names its licence instead.
    assert "pyjpegls " in index and "pydicom " in index and "imagecodecs " in index
    assert "dearpygui" not in index  # only what the Analysis found
    assert "licenses/THIRD-PARTY-LICENSES.txt" in targets
