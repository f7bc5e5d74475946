"""Licences of what the one-folder binary bundles: permissive code only.

The binary ships as one program, so everything in it must allow that under any licence:
MIT, BSD, Apache and the like, PSF for Python itself; no GPL, no MPL. Nothing is taken
from a list here: the built binary (``ZHIVA_BINARY``) is read — the modules in its
archive (with PyInstaller's own reader) and every file under ``_internal/`` — and each
is traced to the distribution of the build environment whose RECORD lists it, to
Python's standard library, to Zhiva Viewer itself, or to PyInstaller. Shared libraries
that no distribution lists are the build machine's system libraries
(`SYSTEM_LIBRARIES`). Each distribution's licence metadata must be permissive
(`licence_of`, `is_permissive`); `EXCEPTIONS` lists what is bundled although its
licence is not on the allow-list, and why that is allowed.

The licence logic is checked without a binary too: tqdm ("MPL-2.0 AND MIT", pulled in
by dicom-anonymizer for its own command line and excluded by the spec) must be refused.
Fonts and presets under ``assets/`` carry their own licence files and are not code.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: SPDX identifiers (and LicenseRef- names) that allow bundling in a program of any
#: licence. "BSD" is what the "BSD License" classifier says (every BSD variant is).
PERMISSIVE = frozenset(
    {
        "MIT", "MIT-CMU", "X11", "BSD", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "ISC",
        "Apache-2.0", "Zlib", "PSF-2.0", "Python-2.0", "CC0-1.0", "Unlicense", "HPND",
        "bzip2-1.0.6", "LicenseRef-Public-Domain",
    }
)  # fmt: skip
#: Copyleft licences with an exception that lifts the copyleft for programs using the
#: component (the GCC Runtime Library Exception: any licence for programs linked to
#: libgcc_s / libstdc++).
PERMISSIVE_WITH = frozenset({"GPL-3.0-or-later WITH GCC-exception-3.1"})
#: Trove licence classifiers (the last part) as SPDX identifiers.
CLASSIFIERS = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
}

#: Bundled although the allow-list does not name their licence; each with why.
EXCEPTIONS = {
    "PyInstaller": (
        "GPL-2.0-or-later with the Bootloader Exception: the bootloader and its loader "
        "modules (pyimod*, pyiboot*) may be embedded in a program of any licence and "
        "distributed 'without any restriction coming from the use of those files'; its "
        "run-time hooks (pyi_rth_*) are Apache-2.0 (PyInstaller's COPYING.txt)"
    ),
    "certifi": (
        "MPL-2.0 (an exception to 'no MPL'): Mozilla's CA certificate list (cacert.pem) "
        "and the module that names its path, shipped unmodified. httpx imports it "
        "whenever it makes a TLS context (httpx._config.create_ssl_context), so no "
        "build with httpx is without it; the app trusts the system's CA store and reads "
        "this bundle only on a Linux system that has none (net._tls). MPL-2.0 applies "
        "file by file: it covers these files, shipped as source with their licence under "
        "licenses/certifi, not the program"
    ),
}

#: Shared libraries of the build machine (Debian 12) that PyInstaller copies with the
#: Python extension modules needing them, by name up to ".so": the licence of the
#: library itself (its source package's copyright also covers tools and tests).
SYSTEM_LIBRARIES = {
    "libpython3.11": "PSF-2.0",
    "libssl": "Apache-2.0",  # OpenSSL 3
    "libcrypto": "Apache-2.0",
    "libz": "Zlib",
    "libffi": "MIT",
    "libbz2": "bzip2-1.0.6",
    "liblzma": "LicenseRef-Public-Domain",  # xz-utils 5.4: the library is public domain
    "libuuid": "BSD-3-Clause",  # util-linux's libuuid
    "libX11": "X11",
    "libXau": "X11",
    "libXdmcp": "X11",
    "libxcb": "X11",
    "libbsd": "BSD-3-Clause AND BSD-2-Clause AND ISC",
    "libmd": "BSD-3-Clause AND BSD-2-Clause AND ISC AND LicenseRef-Public-Domain",
    "libexpat": "MIT",
    # SQLite is in the public domain; Python's sqlite3 links it, which highdicom.image
    # imports (the measurement reports are written with highdicom).
    "libsqlite3": "LicenseRef-Public-Domain",
    "libtinfo": "X11",  # ncurses
    "libgcc_s": "GPL-3.0-or-later WITH GCC-exception-3.1",
    "libstdc++": "GPL-3.0-or-later WITH GCC-exception-3.1",
    # Named so that bundling it fails as what it is: Python's readline module links it.
    "libreadline": "GPL-3.0-or-later",
}

OWN_PACKAGES = frozenset({"net", "render", "viewer", "zhiva_viewer_entry"})
PYINSTALLER_MODULES = ("pyimod", "pyiboot", "pyi_rth_", "_pyi_rth_utils", "pyi_splash")
#: Under _internal/: not code, or accounted for otherwise (the standard library's own
#: folder and zip, package metadata, our assets and the licence texts).
NOT_TRACED = ("licenses/", "assets/", "base_library.zip", "python3.", "zhiva_viewer.egg-info/")


# --- licences -------------------------------------------------------------------------------


def _spdx_tokens(expression: str) -> list[str]:
    return re.findall(r"\(|\)|[^\s()]+", expression)


def is_permissive(expression: str) -> bool:
    """Whether an SPDX licence expression allows bundling in a program of any licence:
    ``AND`` needs both sides to, ``OR`` either; ``X WITH Y`` only as `PERMISSIVE_WITH`
    names it. An unknown identifier is not permissive."""
    tokens = _spdx_tokens(expression)
    position = 0

    def peek() -> str:
        return tokens[position] if position < len(tokens) else ""

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def joined(operator: str, operand: Callable[[], bool]) -> bool:
        """Operands joined by `operator`: all of them must hold (AND) or one (OR)."""
        results = [operand()]
        while peek().upper() == operator:
            take()
            results.append(operand())
        return all(results) if operator == "AND" else any(results)

    def either() -> bool:
        return joined("OR", lambda: joined("AND", one))

    def one() -> bool:
        if peek() == "(":
            take()
            result = either()
            if take() != ")":
                raise ValueError(f"unbalanced licence expression {expression!r}")
            return result
        identifier = take()
        if peek().upper() == "WITH":
            take()
            return f"{identifier} WITH {take()}" in PERMISSIVE_WITH
        return identifier in PERMISSIVE

    if not tokens:
        return False
    result = either()
    if position != len(tokens):
        raise ValueError(f"unreadable licence expression {expression!r}")
    return result


def licence_of(meta: md.PackageMetadata) -> str:
    """A distribution's licence as an SPDX expression: ``License-Expression`` (PEP 639),
    else a ``License`` field that reads as one, else its licence classifiers (each
    counts: AND). An unreadable ``License`` text without classifiers is returned as it
    is, and so is not permissive."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    text = (meta.get("License") or "").strip()
    if text and len(text) < 80 and "\n" not in text:
        tokens = [t for t in _spdx_tokens(text) if t not in ("(", ")")]
        if all(t.upper() in ("AND", "OR", "WITH") or re.fullmatch(r"[\w.+-]+", t) for t in tokens):
            return text
    classifiers = [
        c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    named = [CLASSIFIERS.get(c, f"LicenseRef-{c.replace(' ', '-')}") for c in classifiers]
    if named:
        return " AND ".join(sorted(set(named)))
    return text or "LicenseRef-none-declared"


# --- what the binary holds ------------------------------------------------------------------


@dataclass
class Bundle:
    """What a build holds, by owner: a distribution's name, "Python", "zhiva-viewer",
    "PyInstaller", or "system:<library>"; `unknown` lists what nothing owns."""

    owners: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    def add(self, owner: str, item: str) -> None:
        self.owners.setdefault(owner, []).append(item)


def _installed_files() -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Every installed distribution's files: by path under site-packages, shared
    libraries by file name, and the folders of namespace packages by their owners."""
    by_path: dict[str, str] = {}
    by_name: dict[str, str] = {}
    folders: dict[str, set[str]] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        for item in dist.files or []:
            path = item.as_posix()
            by_path.setdefault(path, name)
            if ".so" in item.name:
                by_name.setdefault(item.name, name)
            for parent in item.parents:
                if str(parent) != ".":
                    folders.setdefault(parent.as_posix(), set()).add(name)
    return by_path, by_name, folders


def trace(modules: Iterable[str], files: Iterable[str]) -> Bundle:
    """Who owns each bundled module (dotted name) and file (path under _internal/)."""
    by_path, by_name, folders = _installed_files()
    bundle = Bundle()
    for module in modules:
        parts = module.split(".")
        stem = "/".join(parts)
        owner = by_path.get(f"{stem}.py") or by_path.get(f"{stem}/__init__.py")
        if owner is not None:
            bundle.add(owner, module)
        elif stem in folders:  # a namespace package (no file of its own)
            for name in folders[stem]:
                bundle.add(name, module)
        elif parts[0] in sys.stdlib_module_names or parts[0].startswith("_sysconfigdata"):
            bundle.add("Python", module)
        elif parts[0] in OWN_PACKAGES:
            bundle.add("zhiva-viewer", module)
        elif parts[0].startswith(PYINSTALLER_MODULES):
            bundle.add("PyInstaller", module)
        else:
            bundle.unknown.append(module)
    for path in files:
        if path.startswith(NOT_TRACED) or re.match(r"[^/]+\.(dist|egg)-info/", path):
            continue
        name = path.rsplit("/", 1)[-1]
        owner = by_path.get(path) or (by_name.get(name) if ".so" in name else None)
        if owner is not None:
            bundle.add(owner, path)
        elif "/" not in path and ".so" in name:
            bundle.add(f"system:{name.split('.so', 1)[0]}", path)
        else:
            bundle.unknown.append(path)
    return bundle


def read_binary(binary: Path) -> Bundle:
    """Trace everything in a one-folder build: its archive's modules, its files."""
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(binary))
    modules: list[str] = []
    for name, entry in archive.toc.items():
        kind = entry[-1]
        if kind == "z":  # the PYZ: every pure-Python module
            modules.extend(archive.open_embedded_archive(name).toc)
        elif kind in ("m", "s"):  # bootstrap modules and scripts
            modules.append(name)
    internal = binary.parent / "_internal"
    files = [p.relative_to(internal).as_posix() for p in internal.rglob("*") if p.is_file()]
    return trace(modules, files)


def audit(bundle: Bundle) -> list[str]:
    """One line per owner whose licence is not allowed, or that is unknown."""
    problems = [f"not traced to any distribution or library: {item}" for item in bundle.unknown]
    for owner, items in sorted(bundle.owners.items()):
        if owner in ("Python", "zhiva-viewer") or owner in EXCEPTIONS:
            continue  # PSF-2.0; Apache-2.0 (pyproject.toml); the exceptions say why
        if owner.startswith("system:"):
            library = owner.removeprefix("system:")
            licence = SYSTEM_LIBRARIES.get(library)
            if licence is None:
                problems.append(
                    f"system library {items[0]}: licence unknown (add it to SYSTEM_LIBRARIES)"
                )
            elif not is_permissive(licence):
                problems.append(f"system library {items[0]}: {licence}")
            continue
        meta = md.metadata(owner)
        licence = licence_of(meta)
        if not is_permissive(licence):
            problems.append(f"{owner} {meta['Version']}: {licence} (e.g. {items[0]})")
    return problems


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "permissive"),
    [
        ("MIT", True),
        ("Apache-2.0 OR BSD-2-Clause", True),
        ("BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0", True),
        ("MIT AND (GPL-2.0-only OR BSD-3-Clause)", True),
        ("MPL-2.0 AND MIT", False),  # tqdm
        ("GPL-3.0-or-later", False),
        ("LGPL-2.1-or-later OR GPL-2.0-only", False),
        ("GPL-2.0-or-later WITH Bootloader-exception", False),
        ("GPL-3.0-or-later WITH GCC-exception-3.1", True),
        ("LicenseRef-whatever", False),
        ("", False),
    ],
)
def test_licence_expressions(expression: str, permissive: bool) -> None:
    assert is_permissive(expression) is permissive


def test_tqdm_would_be_refused_if_it_were_bundled() -> None:
    # It is installed (dicom-anonymizer needs it for its command line): its own metadata.
    assert not is_permissive(licence_of(md.metadata("tqdm")))
    bundle = trace(["tqdm", "tqdm.std", "json"], ["tqdm/cli.py"])
    assert sorted(bundle.owners) == ["Python", "tqdm"] and not bundle.unknown
    problems = audit(bundle)
    assert len(problems) == 1 and problems[0].startswith("tqdm ") and "MPL-2.0" in problems[0]


def test_a_gpl_system_library_or_an_unknown_one_is_refused() -> None:
    bundle = trace([], ["libreadline.so.8", "libz.so.1", "libmystery.so.2"])
    assert audit(bundle) == [
        "system library libmystery.so.2: licence unknown (add it to SYSTEM_LIBRARIES)",
        "system library libreadline.so.8: GPL-3.0-or-later",
    ]


def test_every_component_of_the_binary_is_permissively_licensed(binary: Path) -> None:
    bundle = read_binary(binary)
    # The reading found the app, its dependencies and the standard library at all.
    for owner in ("zhiva-viewer", "Python", "pydicom", "numpy", "httpx", "dearpygui"):
        assert owner in bundle.owners, f"{owner} not found in {binary}"
    assert "tqdm" not in bundle.owners, bundle.owners.get("tqdm")
    problems = audit(bundle)
    assert not problems, "\n".join(problems)
