"""build/build.sh on a clean checkout: it makes its environment the way `make test` does.

The real build is what tests/packaging/test_binary.py checks (scripts/test.sh builds it
first); here bootstrap.sh and the environment's python are stand-ins that record how
they were called, so the script's own logic is checked in a second, not minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

from .conftest import ROOT

_FAKE_BOOTSTRAP = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Stand-in for scripts/bootstrap.sh: records its mode, makes a .venv whose python
    # records what it is asked to run.
    set -euo pipefail
    cd "$(dirname "$0")/.."
    echo "bootstrap $*" >> calls.log
    mkdir -p .venv/bin
    cat > .venv/bin/python <<'PY'
    #!/usr/bin/env bash
    echo "python $*" >> "$(dirname "$0")/../../calls.log"
    PY
    chmod +x .venv/bin/python
    """
)


def _checkout(tmp_path: Path) -> Path:
    tree = tmp_path / "checkout"
    (tree / "build").mkdir(parents=True)
    (tree / "scripts").mkdir()
    shutil.copy2(ROOT / "build" / "build.sh", tree / "build" / "build.sh")
    bootstrap = tree / "scripts" / "bootstrap.sh"
    bootstrap.write_text(_FAKE_BOOTSTRAP)
    bootstrap.chmod(0o755)
    return tree


def _build(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return subprocess.run(
        [str(tree / "build" / "build.sh"), *args],
        cwd=tree, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_clean_checkout_without_venv_gets_one_from_bootstrap(tmp_path: Path) -> None:
    tree = _checkout(tmp_path)
    assert not (tree / ".venv").exists()
    done = _build(tree, "onedir")
    calls = (tree / "calls.log").read_text().splitlines()
    assert calls[0] == "bootstrap build", done.stderr
    assert any(c.startswith("python -m PyInstaller ") and "zhiva-viewer.spec" in c for c in calls)


def test_an_existing_environment_is_used_as_it_is(tmp_path: Path) -> None:
    tree = _checkout(tmp_path)
    subprocess.run([str(tree / "scripts" / "bootstrap.sh"), "test"], check=True)
    _build(tree, "onedir")
    calls = (tree / "calls.log").read_text().splitlines()
    assert [c for c in calls if c.startswith("bootstrap")] == ["bootstrap test"]
