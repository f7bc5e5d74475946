"""Benchmark the packaged app's start: process start to first rendered frame, frozen vs not.

Run:  build/build.sh both && .venv/bin/python bench/startup_frozen.py [--rounds 7]

Three variants of the same command, `zhiva-viewer --first-frame-probe --config-dir DIR`
(the full command line, the window, one frame, exit; the child prints the
`time.monotonic()` of its first frame, the same clock in every process on Linux),
timed from just before each process is spawned, interleaved round by round; medians:

* source: `.venv/bin/python -m viewer` (the unfrozen app);
* one folder: dist/zhiva-viewer-dir/zhiva-viewer;
* one file: dist/zhiva-viewer (unpacks itself into a temp dir at every start).

Target (issue 9): one folder <= 2x the unfrozen app; the one-file figure is reported.
Needs a display: the one in DISPLAY, else a private Xvfb. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from startup import _display, marks  # bench/startup.py: the private Xvfb, the timing

REPO = Path(__file__).resolve().parents[1]
PROBE = ["--first-frame-probe"]


def _run(command: list[str], env: dict[str, str], config: Path) -> float:
    found = marks([*command, *PROBE, "--config-dir", str(config)], env)
    if "first-frame" not in found:
        raise SystemExit(f"{command[0]} printed no first-frame mark")
    return found["first-frame"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    variants: dict[str, list[str]] = {"source": [sys.executable, "-m", "viewer"]}
    for name, path in (
        ("one folder", REPO / "dist" / "zhiva-viewer-dir" / "zhiva-viewer"),
        ("one file", REPO / "dist" / "zhiva-viewer"),
    ):
        if not path.is_file():
            raise SystemExit(f"{path} is missing: build it first (build/build.sh both)")
        variants[name] = [str(path)]
    env = dict(os.environ)
    env["ZHIVA_SECRET_STORE"] = "file"
    env["XDG_CONFIG_DIRS"] = "/nonexistent"
    for name in ("ZHIVA_SERVERS_FILE", "ZHIVA_SERVERS_URL"):
        env.pop(name, None)
    xvfb = _display(env)
    try:
        with tempfile.TemporaryDirectory(prefix="zhiva-bench-") as tmp:
            config = Path(tmp) / "config"
            results: dict[str, list[float]] = {name: [] for name in variants}
            for command in variants.values():  # warm the OS file cache
                _run(command, env, config)
            for _ in range(args.rounds):
                for name, command in variants.items():
                    results[name].append(_run(command, env, config))
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
    base = statistics.median(results["source"])
    print(
        f"start to first rendered frame, {args.rounds} rounds, medians (display {env['DISPLAY']})"
    )
    for name, times in results.items():
        median = statistics.median(times)
        target = "   (target <= 2x)" if name == "one folder" else ""
        print(
            f"  {name:<12}{median * 1000:7.0f} ms   {median / base:4.2f}x"
            f"   (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}){target}"
        )


if __name__ == "__main__":
    main()
