"""Benchmark startup: process start to the first rendered frame, vs a bare dearpygui window.

Run:  .venv/bin/python bench/startup.py [--rounds 7]

Each variant is a fresh Python process, timed from just before it is spawned to the
moment its first frame has been rendered (the child prints `time.monotonic()`, which
is the same clock in every process on Linux), interleaved round by round; medians.

* floor: `import dearpygui`, one context, a viewport with one window, one frame;
* app: `viewer.app.main.run` — the shell's first frame, and (second figure) the first
  frame that shows the Servers page, built once the settings have loaded on a worker;
* zhiva-viewer: the real command (`viewer.__main__.main(["--config-dir", DIR])`),
  with its argument handling and log set-up, the same two figures.

Target (issue 7): first frame <= 1.5x the floor, for the app and for the command. Needs a display: the one in
DISPLAY, else a private Xvfb. Nothing here asserts; tests never time anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FLOOR = """
import time, dearpygui.dearpygui as dpg
dpg.create_context()
dpg.configure_app(manual_callback_management=True)
with dpg.window(tag="w"):
    dpg.add_text("hello")
dpg.set_primary_window("w", True)
dpg.create_viewport(title="floor", width=1180, height=800)
dpg.setup_dearpygui()
dpg.show_viewport()
dpg.render_dearpygui_frame()
print("first", time.monotonic(), flush=True)
dpg.destroy_context()
"""

APP = """
import sys, time
from viewer.app.main import run
marks = {{}}
def on_frame(app):
    now = time.monotonic()
    marks.setdefault("first", now)
    if app.servers_page is not None:
        marks["page_frames"] = marks.get("page_frames", 0) + 1
        if marks["page_frames"] == 1:
            marks["servers"] = now
            return False
    return app.frames < 2000
{launch}
for key in ("first", "servers"):
    print(key, marks.get(key, float("nan")), flush=True)
"""


DIRECT = "run(config_dir=sys.argv[1], on_frame=on_frame)"
# The command as users start it; `run` gets the benchmark's frame hook.
COMMAND = """
import viewer.app.main as app_main
app_main.run = lambda _run=app_main.run, **kw: _run(on_frame=on_frame, **kw)
from viewer.__main__ import main
main(["--config-dir", sys.argv[1]])
"""


def _settings(directory: Path) -> None:
    """A realistic settings file: a few servers, one selected, secrets in a file."""
    sys.path.insert(0, str(REPO))
    from net import ServerConfig
    from viewer.settings import ServerRegistry, resolve_paths

    registry = ServerRegistry.open(resolve_paths(directory), fetch_organisation=False)
    for n in range(5):
        registry.add(
            ServerConfig(
                name=f"PACS {n}",
                url=f"https://pacs{n}.example.org/dicom-web",
                auth_type="basic",
                username="reader",
            ),
            password="not-a-real-password",
        )
    registry.select("PACS 0")


def _run(code: str, env: dict[str, str], *args: str) -> dict[str, float]:
    return marks([sys.executable, "-c", code, *args], env)


def marks(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `command`; the "NAME MONOTONIC" lines it prints, as seconds since its spawn."""
    start = time.monotonic()
    done = subprocess.run(
        command,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    marks: dict[str, float] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        marks[key] = float(value) - start
    return marks


def _display(env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Use DISPLAY if set, else start a private Xvfb and point `env` at it."""
    if env.get("DISPLAY"):
        return None
    sys.path.insert(0, str(REPO))
    from tests.support.xvfb import XvfbError, start_xvfb

    try:
        process, env["DISPLAY"] = start_xvfb()
    except XvfbError as exc:
        raise SystemExit(f"no DISPLAY: {exc}") from exc
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["ZHIVA_SECRET_STORE"] = "file"
    env["XDG_CONFIG_DIRS"] = "/nonexistent"
    for name in ("ZHIVA_SERVERS_FILE", "ZHIVA_SERVERS_URL"):
        env.pop(name, None)
    xvfb = _display(env)
    try:
        with tempfile.TemporaryDirectory(prefix="zhiva-bench-") as tmp:
            config = Path(tmp) / "config"
            _settings(config)
            variants = {
                "floor": (FLOOR, ()),
                "app": (APP.format(launch=DIRECT), (str(config),)),
                "zhiva-viewer": (APP.format(launch=COMMAND), (str(config),)),
            }
            results: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
            for code, extra in variants.values():  # warm the OS file cache
                _run(code, env, *extra)
            for _ in range(args.rounds):
                for name, (code, extra) in variants.items():
                    results[name].append(_run(code, env, *extra))
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    floor = median("floor", "first")
    print(
        f"startup to first rendered frame, {args.rounds} rounds, medians (display {env['DISPLAY']})"
    )
    print(f"  {'bare dearpygui window (floor)':<46}{floor * 1000:7.0f} ms   1.00x")
    for name in ("app", "zhiva-viewer"):
        first, servers = median(name, "first"), median(name, "servers")
        target = "   (target <= 1.5x)"
        print(
            f"  {name + ': first frame':<46}{first * 1000:7.0f} ms   {first / floor:4.2f}x{target}"
        )
        print(
            f"  {name + ': Servers page on screen':<46}{servers * 1000:7.0f} ms   {servers / floor:4.2f}x"
        )


if __name__ == "__main__":
    main()
