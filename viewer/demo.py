"""The demo study: the phantom CT series, generated once into the user cache dir.

A new user (``--demo``, or the first launch before a server is chosen) sees images
within seconds and offline: 60 slices of 256x256 are written in well under a second
and read back through `LocalFolderSource`, the same path as any local folder. The
generator is deterministic, so a finished copy (marked by a stamp file written last,
keyed by the generator version and size) is reused on later launches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

from viewer import phantom

__all__ = ["DEMO_SIZE", "DEMO_SLICES", "DemoStudy", "demo_dir", "ensure_demo_study"]

DEMO_SLICES = 60
DEMO_SIZE = 256


@dataclass(frozen=True)
class DemoStudy:
    root: Path
    study_uid: str
    series_uid: str


def demo_dir() -> Path:
    return Path(platformdirs.user_cache_dir("zhiva-viewer", appauthor=False)) / "demo"


def ensure_demo_study(
    root: Path | None = None, *, slices: int = DEMO_SLICES, size: int = DEMO_SIZE
) -> DemoStudy:
    """Generate the demo study under `root` unless a complete copy is there already."""
    base = root if root is not None else demo_dir()
    folder = base / f"v{phantom.GENERATOR_VERSION}-{slices}x{size}"
    stamp = folder / "complete"
    kwargs = {"slices": slices, "rows": size, "cols": size, "variants": ("uncompressed",)}
    if stamp.exists():
        manifest = phantom.study_manifest(folder, **kwargs)  # type: ignore[arg-type]
    else:
        manifest = phantom.generate_study(folder, **kwargs)  # type: ignore[arg-type]
        # Written last: a run interrupted half-way regenerates instead of showing gaps.
        stamp.write_text("ok\n")
    return DemoStudy(folder, manifest.study_uid, manifest["uncompressed"].series_uid)
