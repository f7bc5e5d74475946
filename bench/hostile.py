"""Hostile servers against the client with its default limits: time and peak memory.

Starts the suite's hostile HTTPS server (tests/support/hostile.py, loopback, TLS with a
test CA) and, for each answer, runs the client in a fresh process that reports how long
the request took to end, how it ended, and its peak RSS above the RSS it had before
the request (the issue's bound: 300 MB above normal):

- a 1 GiB QIDO answer (no Content-Length): stops at the 64 MiB JSON limit;
- a gzip bomb (~2 MB that would expand to 2 GiB) as a QIDO answer: the same limit;
- a multipart part that never ends: the 2 GiB part limit, spooled to disk past 128 MiB;
- a QIDO body sent at 1 byte/s: the 30 s request deadline;
- a series stream that stalls after its first bytes: the progress rule (64 KiB in 30 s).

Every one must end with a clear error within its deadline and under the memory bound.
Not a test: it takes ~2 minutes with the default deadlines (`--deadline` shortens them).

Run: .venv/bin/python bench/hostile.py [--deadline SECONDS]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 1024**2
SCENARIOS = ("1 GiB QIDO answer", "gzip bomb", "endless multipart part", "1 byte/s body",
             "stalled series stream")  # fmt: skip
BOUND = 300 * MiB


def _rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def child(scenario: str, origin: str, ca_file: str, deadline: float | None) -> None:
    """In a fresh process: one request against the hostile server, figures as JSON."""
    import net
    from net import Deadlines, DicomWebClient, ServerConfig

    deadlines = (
        net.DEFAULT_DEADLINES
        if deadline is None
        else Deadlines(request=deadline, progress_window=deadline)
    )
    config = ServerConfig(name="hostile", url=f"{origin}/pacs", ca_file=ca_file)
    with DicomWebClient(config, deadlines=deadlines) as client:
        client.search_studies  # noqa: B018 - imports pydicom and friends before the baseline
        baseline = _rss_now()
        start = time.perf_counter()
        outcome = "no error (!)"
        try:
            if scenario in ("1 GiB QIDO answer", "gzip bomb", "1 byte/s body"):
                client.search_studies()
            else:
                for _ in client.iter_series_parts("1.2.3", "4.5.6"):
                    pass
        except net.DicomWebError as exc:
            outcome = f"{type(exc).__name__}: {exc.message}"
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "outcome": outcome, "baseline": baseline, "peak": peak}))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deadline", type=float, help="request deadline and progress window")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2], args.deadline)
        return 0

    from tests.support.hostile import (
        certificates_in,
        endless_part,
        flood,
        gzip_bomb,
        gzip_bomb_body,
        run_hostile_server,
        stall,
        trickle,
    )

    item = b'{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}},'
    behaviours = {
        "1 GiB QIDO answer": flood(b"[", item, 1024 * MiB),
        "gzip bomb": gzip_bomb(gzip_bomb_body(2 * 1024 * MiB)),
        "endless multipart part": endless_part(),
        "1 byte/s body": trickle(b"[" + b" " * 100_000 + b"]", interval=1.0),
        "stalled series stream": stall(
            b"--b\r\nContent-Type: application/dicom\r\n\r\n" + bytes(128) + b"DICM",
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        certificates = certificates_in(Path(tmp))
        with run_hostile_server(certificates) as server:
            print(f"{'answer':<24}{'time':>9}{'peak RSS above normal':>24}   how it ended")
            for scenario in SCENARIOS:
                server.route("/pacs/", behaviours[scenario])
                command = [sys.executable, __file__, "--child", scenario, server.origin,
                           str(certificates.ca_file)]  # fmt: skip
                if args.deadline is not None:
                    command += ["--deadline", str(args.deadline)]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                above = figures["peak"] - figures["baseline"]
                verdict = "ok" if above < BOUND else "OVER THE BOUND"
                print(
                    f"{scenario:<24}{figures['seconds']:8.1f}s{above / MiB:14.0f} MiB ({verdict})"
                    f"   {figures['outcome']}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
