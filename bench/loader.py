"""The series loader vs curl vs dicomweb-client, measured in one run.

Starts the test PACS (Orthanc + DICOMweb behind nginx TLS on loopback) with the
300-slice 512x512 int16 phantom series (158 MB) and measures, interleaved over N
rounds (medians reported, since other work on the machine makes single runs noisy):

- curl: one multipart/related request for the series to /dev/null — time to first
  byte and total (the practical limit here);
- dicomweb-client: `retrieve_series` (requests underneath), total;
- the network layer alone (`DicomWebClient.iter_series`, datasets dropped): what the
  loader builds on, for reference;
- ours, `SeriesLoader.open_series` (a handle) with a fresh loader and empty caches:
  * time to the first displayable slice: open -> the first image's RGBA buffer
    (`to_rgba` through a LUT, as the UI does);
  * time to the whole series decoded and in the memory cache;
  * with the disk cache on (a temporary directory), and reopened from it;
- cache hit ratio while a simulated UI scrolls 30 slices/s starting right after
  open (a tick whose slice is not displayable is a miss, including ticks before the
  layout is known), overall and after the first second; once from the default open
  (cursor on the first image) and once opened at the middle slice;
- peak RSS of a fresh process that opens the series, vs the memory budget (the
  default 1 GiB, and 64 MiB, smaller than the series);
- pool sizing: JPEG 2000 decode throughput with 1-4 threads (imagecodecs releases
  the GIL), and with --j2k the whole J2K series through the loader per pool size.

Both nginx configurations are measured (DESIGN.md §7): 64 KiB proxy buffers and the
default 4 KiB ones with proxy_buffering off; the scroll, RSS and decode figures only on
the first. Targets: whole series <= 1.5x curl; first slice <= 2x curl's time to first byte
plus one decode; >= 99% hits after the first second; peak RSS <= budget + 250 MB.

Run: .venv/bin/python bench/loader.py [--rounds N] [--j2k]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import render
from net import DicomWebClient, ServerConfig
from net._client import ACCEPT_DICOM
from viewer.loader import (
    FirstImage,
    FrameReady,
    InstanceDiskCache,
    SeriesLoader,
    SeriesOpened,
    to_rgba,
)

MiB = 1024**2


@dataclass(frozen=True)
class Target:
    """Where the series lives: enough to measure against any running test PACS."""

    base_url: str
    ca_file: str
    auth: tuple[str, str]
    study_uid: str
    series_uid: str
    j2k_series_uid: str = ""
    j2k_paths: tuple[str, ...] = ()

    def config(self) -> ServerConfig:
        return ServerConfig(name="bench", url=self.base_url, ca_file=self.ca_file)

    def client(self) -> DicomWebClient:
        return DicomWebClient(self.config(), httpx.BasicAuth(*self.auth))


# -- baselines -----------------------------------------------------------------------------


def curl_once(target: Target) -> tuple[float, float]:
    url = f"{target.base_url}/studies/{target.study_uid}/series/{target.series_uid}"
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--cacert", target.ca_file,
         "-u", ":".join(target.auth), "-H", f"Accept: {ACCEPT_DICOM}",
         "-w", "%{time_starttransfer} %{time_total} %{http_code}", url],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    if out[2] != "200":
        raise SystemExit(f"curl got HTTP {out[2]}")
    return float(out[0]), float(out[1])


def net_stream_once(client: DicomWebClient, target: Target) -> float:
    """The network layer alone: the series as datasets, dropped as they come."""
    start = time.perf_counter()
    for _ in client.iter_series(target.study_uid, target.series_uid):
        pass
    return time.perf_counter() - start


def dicomweb_client_once(target: Target) -> float:
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    session.verify = target.ca_file
    session.auth = target.auth
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    client = DICOMwebClient(url=target.base_url, session=session)
    start = time.perf_counter()
    client.retrieve_series(target.study_uid, target.series_uid)
    return time.perf_counter() - start


# -- ours ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenTimes:
    first: float  # open -> first displayable RGBA
    whole: float  # open -> every slice decoded and cached


def ours_open(
    client: DicomWebClient,
    target: Target,
    *,
    series_uid: str | None = None,
    disk: InstanceDiskCache | None = None,
    workers: int | None = None,
) -> OpenTimes:
    """Open a series with a fresh loader, acting as the UI: drain events, render."""
    lut = render.LUTCache()
    with SeriesLoader(client, disk_cache=disk, workers=workers) as loader:
        start = time.perf_counter()
        handle = loader.open_series(series_uid or target.series_uid, study_uid=target.study_uid)
        first = whole = None
        while whole is None:
            event = loader.results.get(timeout=60)
            now = time.perf_counter()
            if isinstance(event, FirstImage) and first is None:
                to_rgba(event.image, lut_cache=lut)
                first = time.perf_counter() - start
            elif isinstance(event, SeriesOpened) and first is None:
                if handle.rgba(event.cursor, lut_cache=lut) is not None:
                    first = time.perf_counter() - start
            elif isinstance(event, FrameReady):
                if first is None and event.index == handle.cursor:
                    handle.rgba(event.index, lut_cache=lut)
                    first = time.perf_counter() - start
                if event.progress.complete:
                    whole = now - start
        assert first is not None
        loader.wait_until_idle(30)
    return OpenTimes(first, whole)


@dataclass(frozen=True)
class ScrollResult:
    hits: int
    ticks: int
    late_hits: int  # after the first second
    late_ticks: int

    @property
    def overall(self) -> float | None:
        """Hit ratio over every tick; None when there was no tick (a run under 1/30 s)."""
        return self.hits / self.ticks if self.ticks else None

    @property
    def late(self) -> float | None:
        """Hit ratio after the first second; None when the scroll lasted no longer."""
        return self.late_hits / self.late_ticks if self.late_ticks else None


def scroll_line(scroll: list[ScrollResult], seconds: float, where: str) -> str:
    """The scroll figures of `scroll` (one result per round), medians over the rounds.

    A scroll of a second or less has no "after the first second" part: that figure is
    then not measured rather than a division by zero.
    """

    def percent(values: list[float | None]) -> str:
        measured = [v for v in values if v is not None]
        return f"{_median(measured) * 100:5.1f}%" if measured else "  n/a"

    late = percent([s.late for s in scroll])
    note = " (target >= 99%)" if late.strip() != "n/a" else " (scroll longer than 1 s to measure)"
    return (
        f"scroll 30 slices/s for {seconds:g} s, {where}: hits {percent([s.overall for s in scroll])} "
        f"overall, {late} after the first second{note}"
    )


def ours_scroll(
    client: DicomWebClient,
    target: Target,
    *,
    seconds: float,
    rate: float = 30.0,
    middle: bool = False,
) -> ScrollResult:
    """A UI that scrolls `rate` slices/s from the moment the series is opened.

    Each tick it moves the cursor one slice (towards the farther end, bouncing at the
    ends) and asks the loader for that slice; not displayable = a miss. Before the
    layout is known there is no slice to ask for: those ticks are misses too.
    """
    lut = render.LUTCache()
    hits = ticks = late_hits = late_ticks = 0
    with SeriesLoader(client) as loader:
        start = time.perf_counter()
        cursor_arg = None
        if middle:
            count = len(client.search_instances(target.study_uid, target.series_uid))
            cursor_arg = count // 2
            start = time.perf_counter()  # the instance count is the UI's, not the loader's
        handle = loader.open_series(
            target.series_uid, study_uid=target.study_uid, cursor=cursor_arg
        )
        position: int | None = None
        direction = 1
        n = 0
        for tick in range(int(seconds * rate)):
            delay = start + tick / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for event in loader.drain():
                if isinstance(event, SeriesOpened):
                    n = len(event.layout)
                    position = event.cursor
                    direction = 1 if position < n // 2 else -1
            shown = False
            if position is not None:
                if not 0 <= position + direction < n:
                    direction = -direction
                position += direction
                handle.set_cursor(position)
                shown = handle.rgba(position, lut_cache=lut) is not None
            ticks += 1
            hits += shown
            if tick >= rate:  # after the first second
                late_ticks += 1
                late_hits += shown
    return ScrollResult(hits, ticks, late_hits, late_ticks)


# -- peak RSS in a fresh process ----------------------------------------------------------------


def rss_child(target: Target, budget: int, disk_dir: str | None) -> None:
    """Run in a fresh process: open the series with `budget`, print peak RSS (JSON)."""
    client = target.client()
    baseline = _vm_hwm()
    disk = InstanceDiskCache(disk_dir) if disk_dir else None
    with SeriesLoader(client, memory_budget=budget, disk_cache=disk) as loader:
        handle = loader.open_series(target.series_uid, study_uid=target.study_uid)
        layout = handle.opened.result(60)
        loader.wait_until_idle(60)
        # Scroll the whole series once, so the budget is exercised end to end.
        for index in range(len(layout)):
            handle.set_cursor(index)
            loader.wait_until_idle(30)
        cached = loader.cache.nbytes
        peak_cache = loader.cache.peak_nbytes
    print(
        json.dumps(
            {"baseline": baseline, "peak": _vm_hwm(), "cached": cached, "peak_cache": peak_cache}
        )
    )


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss(target: Target, budget: int, *, disk: bool) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", json.dumps(target.__dict__), str(budget),
             tmp if disk else ""],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    result: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return result


# -- pool sizing ---------------------------------------------------------------------------------


def decode_scaling(
    paths: tuple[str, ...], threads: tuple[int, ...] = (1, 2, 3, 4)
) -> dict[int, float]:
    """JPEG 2000 frames decoded per second with N threads (GIL released => scales)."""
    import pydicom

    datasets = [pydicom.dcmread(p) for p in paths[:60]]
    render.decode_frame(datasets[0])
    fps: dict[int, list[float]] = {n: [] for n in threads}
    for _ in range(3):
        for n in threads:
            start = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(render.decode_frame, datasets))
            fps[n].append(len(datasets) / (time.perf_counter() - start))
    return {n: statistics.median(v) for n, v in fps.items()}


# -- the run ---------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _ms(value: float) -> str:
    return f"{value * 1000:8.1f} ms"


def measure(
    target: Target, *, rounds: int, scroll_seconds: float, j2k: bool, full: bool = True
) -> None:
    """The figures on one server; without `full` only the transfer ones (the scroll, RSS
    and decode figures do not depend on how the server relays bytes)."""
    client = target.client()
    # Warm up every path once (Orthanc's cache, TLS, imports, decoder plugins).
    curl_once(target)
    dicomweb_client_once(target)
    ours_open(client, target)

    series: dict[str, list[float]] = {
        k: [] for k in ("ttfb", "curl", "dwc", "net", "first", "whole", "disk", "reopen")
    }
    for _ in range(rounds):  # interleaved, so drift affects every client alike
        ttfb, total = curl_once(target)
        series["ttfb"].append(ttfb)
        series["curl"].append(total)
        series["dwc"].append(dicomweb_client_once(target))
        series["net"].append(net_stream_once(client, target))
        times = ours_open(client, target)
        series["first"].append(times.first)
        series["whole"].append(times.whole)
        with tempfile.TemporaryDirectory() as tmp:
            disk = InstanceDiskCache(tmp)
            series["disk"].append(ours_open(client, target, disk=disk).whole)
            series["reopen"].append(ours_open(client, target, disk=disk).whole)

    curl_ref, ttfb_ref = _median(series["curl"]), _median(series["ttfb"])
    curl_best = min(series["curl"])
    decode_one = _median([_decode_once(client, target) for _ in range(5)])

    def line(label: str, key: str, note: str = "") -> None:
        values = series[key]
        print(
            f"{label:<44}{_ms(_median(values))} median {_median(values) / curl_ref:5.2f}x curl"
            f"   best {_ms(min(values))} {min(values) / curl_best:5.2f}x curl's best{note}"
        )

    print(f"series: 300 x 512x512 int16 (158 MB); {rounds} rounds interleaved")
    print(f"{'curl: time to first byte':<44}{_ms(ttfb_ref)} median")
    line("curl: whole series (one request)", "curl", "   (baseline)")
    line("dicomweb-client retrieve_series", "dwc")
    line("net alone: iter_series, datasets dropped", "net", "   (reference)")
    line("ours: open -> whole series decoded+cached", "whole", "   (target <= 1.5x)")
    line("ours: same, writing the disk cache", "disk")
    line("ours: reopened from the disk cache", "reopen")
    limit = 2 * ttfb_ref + decode_one
    first = _median(series["first"])
    print(
        f"{'ours: open -> first slice RGBA':<44}{_ms(first)} median "
        f"{first / limit:5.2f}x the target (2 x TTFB + one decode = {limit * 1000:.1f} ms)"
    )
    speedup = _median(series["dwc"]) / _median(series["whole"])
    print(f"ours vs dicomweb-client: {speedup:.2f}x faster to a decoded series")
    if not full:
        client.close()
        return

    for middle in (False, True):
        scroll = [
            ours_scroll(client, target, seconds=scroll_seconds, middle=middle)
            for _ in range(max(1, rounds // 2))
        ]
        where = "opened at the middle slice" if middle else "default open"
        print(scroll_line(scroll, scroll_seconds, where))

    for budget, disk in ((1024 * MiB, False), (64 * MiB, False), (64 * MiB, True)):
        rss = peak_rss(target, budget, disk=disk)
        over = (rss["peak"] - budget) / MiB
        print(
            f"peak RSS, budget {budget / MiB:6.0f} MiB{' + disk cache' if disk else ''}: "
            f"{rss['peak'] / MiB:6.0f} MiB (process baseline {rss['baseline'] / MiB:.0f} MiB, "
            f"cache peak {rss['peak_cache'] / MiB:.0f} MiB) = budget {over:+.0f} MiB (target <= +250)"
        )

    if target.j2k_paths:
        scaling = decode_scaling(target.j2k_paths)
        line = ", ".join(
            f"{n} thr {fps:5.1f} fps ({fps / scaling[1]:.2f}x)" for n, fps in scaling.items()
        )
        print(f"JPEG 2000 decode throughput: {line}")
    if j2k and target.j2k_series_uid:
        for workers in (2, 3, 4):
            times = [
                ours_open(client, target, series_uid=target.j2k_series_uid, workers=workers).whole
                for _ in range(2)
            ]
            print(f"J2K series through the loader, {workers} workers: {_ms(_median(times))}")
    client.close()


def _decode_once(client: DicomWebClient, target: Target) -> float:
    """One slice's decode + RGBA, the 'one decode' of the first-slice target."""
    instances = client.search_instances(target.study_uid, target.series_uid, limit=1)
    ds = client.retrieve_instance(
        target.study_uid, target.series_uid, instances[0].sop_instance_uid
    )
    start = time.perf_counter()
    render.frame_to_rgba(ds)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scroll-seconds", type=float, default=3.0)
    parser.add_argument("--j2k", action="store_true", help="also time the J2K series per pool size")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scroll_seconds <= 0:
        parser.error("--scroll-seconds must be more than 0")
    if args.rss_child:
        fields = json.loads(args.rss_child[0])
        fields["auth"] = tuple(fields["auth"])
        fields["j2k_paths"] = tuple(fields["j2k_paths"])
        rss_child(Target(**fields), int(args.rss_child[1]), args.rss_child[2] or None)
        return 0

    from tests.support.pacs import run_test_pacs
    from tests.support.testdata import ensure_phantom, upload_testdata

    manifest = ensure_phantom()
    with tempfile.TemporaryDirectory() as tmp, run_test_pacs(Path(tmp)) as pacs:
        data = upload_testdata(pacs.orthanc_url, pacs.admin_auth, manifest)
        target = Target(
            base_url=pacs.base_url,
            ca_file=str(pacs.certificates.ca_file),
            auth=pacs.admin_auth,
            study_uid=data.study_uid,
            series_uid=data.series("uncompressed").series_uid,
            j2k_series_uid=data.series("j2k").series_uid,
            j2k_paths=tuple(str(p) for p in data.series("j2k").paths),
        )
        for label, base_url in (
            ("nginx with 64 KiB proxy buffers (16 KiB TLS records)", pacs.base_url),
            ("nginx default buffers, proxy_buffering off (4 KiB TLS records)",
             pacs.default_buffers_base_url),
        ):  # fmt: skip
            print(f"== {label}")
            measure(
                dataclasses.replace(target, base_url=base_url),
                rounds=args.rounds,
                scroll_seconds=args.scroll_seconds,
                j2k=args.j2k,
                full=base_url == pacs.base_url,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
