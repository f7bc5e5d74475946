"""Whole-series retrieval: our client vs curl vs dicomweb-client, in one run.

Starts the test PACS (Orthanc + DICOMweb behind nginx TLS on loopback), loads the
300-slice 512x512 int16 phantom series (158 MB) and times, best and median of N rounds,
on both nginx configurations real servers come in (DESIGN.md §7): 64 KiB proxy buffers
(16 KiB TLS records) and nginx's default 4 KiB buffers with proxy_buffering off (4 KiB
records, ~39,000 of them for the series):

- curl: one multipart/related request written to /dev/null (the practical limit here),
  its time to first byte and total;
- httpx raw: our transport alone, streaming the bytes with iter_raw(64 KiB), no parsing;
- ours: `DicomWebClient.iter_series` — bytes to parsed pydicom datasets — and the time
  to the first parsed instance;
- dicomweb-client: `retrieve_series` (requests underneath).

Prints ratios against curl measured in the same run. Not a test: numbers depend on the
machine; the targets, on both configurations, are ours <= 1.5x curl, faster than
dicomweb-client, and first instance <= 2x curl's time to first byte.

``--fallback`` measures instead the mode for servers without series-level retrieve
(`fallback_main`): the same series by concurrent instance requests, against the
single stream and curl of the same run (target: <= 2.5x the single stream).

Run: .venv/bin/python bench/retrieve.py [--rounds N] [--fallback]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from net import DicomWebClient, ServerConfig
from net._client import ACCEPT_DICOM, STREAM_CHUNK_SIZE
from tests.support.pacs import run_test_pacs
from tests.support.testdata import ensure_phantom, upload_testdata


def curl_once(url: str, ca: str, auth: tuple[str, str]) -> tuple[float, float, int]:
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "--cacert",
            ca,
            "-u",
            f"{auth[0]}:{auth[1]}",
            "-H",
            f"Accept: {ACCEPT_DICOM}",
            "-w",
            "%{time_starttransfer} %{time_total} %{size_download} %{http_code}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if out[3] != "200":
        raise SystemExit(f"curl got HTTP {out[3]}")
    return float(out[0]), float(out[1]), int(out[2])


def httpx_raw_once(url: str, ca: str, auth: tuple[str, str]) -> tuple[float, int]:
    with httpx.Client(verify=ca, auth=auth) as client:
        start = time.perf_counter()
        size = 0
        with client.stream("GET", url, headers={"Accept": ACCEPT_DICOM}) as response:
            for chunk in response.iter_raw(STREAM_CHUNK_SIZE):
                size += len(chunk)
        return time.perf_counter() - start, size


def ours_once(
    config: ServerConfig, auth: tuple[str, str], study: str, series: str
) -> tuple[float, float, int]:
    # The client (and its SSL context, which loads the OS trust store) is made once per
    # server in the app, so it is made before the clock starts; the connection is not.
    with DicomWebClient(config, httpx.BasicAuth(*auth)) as client:
        start = time.perf_counter()
        first = 0.0
        count = 0
        for _ds in client.iter_series(study, series):
            if count == 0:
                first = time.perf_counter() - start
            count += 1
        return first, time.perf_counter() - start, count


def dicomweb_client_once(
    base: str, ca: str, auth: tuple[str, str], study: str, series: str
) -> tuple[float, int]:
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    session.verify = ca
    session.auth = auth
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    client = DICOMwebClient(url=base, session=session)
    start = time.perf_counter()
    datasets = client.retrieve_series(study, series)
    return time.perf_counter() - start, len(datasets)


def summary(name: str, times: list[float], ref: list[float] | None) -> str:
    best, median = min(times), statistics.median(times)
    if ref:
        # Best-of ratios are the steadier figure on a shared 2-core machine; both shown.
        ratio = (
            f"{median / statistics.median(ref):5.2f}x curl (median), {best / min(ref):5.2f}x (best)"
        )
    else:
        ratio = "   (baseline)"
    return f"{name:<34} best {best * 1000:8.1f} ms   median {median * 1000:8.1f} ms   {ratio}"


def measure(
    label: str,
    base_url: str,
    ca: str,
    auth: tuple[str, str],
    study_uid: str,
    series_uid: str,
    rounds: int,
) -> None:
    url = f"{base_url}/studies/{study_uid}/series/{series_uid}"
    config = ServerConfig(name="bench", url=base_url, ca_file=ca)
    # Warm up every path once (Orthanc's cache, TLS session setup, imports).
    curl_once(url, ca, auth)
    ours_once(config, auth, study_uid, series_uid)
    dicomweb_client_once(base_url, ca, auth, study_uid, series_uid)

    curl_ttfb, curl_total, raw, ours_first, ours_total, dwc = [], [], [], [], [], []
    size = count = 0
    for _ in range(rounds):  # interleaved, so drift affects every client alike
        t1, t2, size = curl_once(url, ca, auth)
        curl_ttfb.append(t1)
        curl_total.append(t2)
        raw.append(httpx_raw_once(url, ca, auth)[0])
        first, total, count = ours_once(config, auth, study_uid, series_uid)
        ours_first.append(first)
        ours_total.append(total)
        dwc.append(dicomweb_client_once(base_url, ca, auth, study_uid, series_uid)[0])

    ref = curl_total
    ttfb = statistics.median(curl_ttfb)
    print(f"== {label}")
    print(
        f"series: {count} instances, {size / 1e6:.1f} MB in one multipart response; {rounds} rounds"
    )
    print(summary("curl (one request)", curl_total, None))
    print(summary("plain httpx iter_raw, no parsing", raw, ref))
    print(summary("ours: iter_series -> datasets", ours_total, ref))
    print(summary("dicomweb-client retrieve_series", dwc, ref))
    print(f"{'throughput ours':<34} {size / 1e6 / statistics.median(ours_total):8.1f} MB/s")
    print(
        f"{'time to first instance (ours)':<34} median {statistics.median(ours_first) * 1000:8.1f} ms   "
        f"{statistics.median(ours_first) / ttfb:5.2f}x curl's time to first byte ({ttfb * 1000:.1f} ms)"
    )
    print(
        f"ours vs dicomweb-client: {statistics.median(dwc) / statistics.median(ours_total):.2f}x faster"
        f" (median), {min(dwc) / min(ours_total):.2f}x (best); "
        "targets: ours <= 1.5x curl, faster than dicomweb-client, first instance <= 2x curl TTFB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--fallback", action="store_true", help="the instance-by-instance mode (issue 17)"
    )
    args = parser.parse_args()
    if args.fallback:
        return fallback_main(args.rounds)

    manifest = ensure_phantom()
    with tempfile.TemporaryDirectory() as tmp, run_test_pacs(Path(tmp)) as pacs:
        data = upload_testdata(pacs.orthanc_url, pacs.admin_auth, manifest)
        series = data.series("uncompressed")
        ca = str(pacs.certificates.ca_file)
        for label, base_url in (
            ("nginx with 64 KiB proxy buffers (16 KiB TLS records)", pacs.base_url),
            ("nginx default buffers, proxy_buffering off (4 KiB TLS records)",
             pacs.default_buffers_base_url),
        ):  # fmt: skip
            measure(
                label, base_url, ca, pacs.admin_auth, data.study_uid, series.series_uid,
                args.rounds,
            )  # fmt: skip
    return 0


# --- the fallback for servers without series-level retrieve -------------------------------


def parts_once(
    config: ServerConfig, auth: tuple[str, str], study: str, series: str, **client: int
) -> tuple[float, int]:
    """A series' parts as the loader reads them (`iter_series_parts`), bodies touched."""
    with DicomWebClient(config, httpx.BasicAuth(*auth), **client) as c:  # type: ignore[arg-type]
        start = time.perf_counter()
        count = 0
        for part in c.iter_series_parts(study, series):
            count += len(part) > 0
        return time.perf_counter() - start, count


def fallback_main(rounds: int) -> int:
    import msgspec

    from net import discover
    from net._fallback import FALLBACK_IN_FLIGHT
    from tests.support.quirks import run_quirks_front

    manifest = ensure_phantom()
    with tempfile.TemporaryDirectory() as tmp, run_test_pacs(Path(tmp) / "pacs") as pacs:
        data = upload_testdata(pacs.orthanc_url, pacs.admin_auth, manifest)
        series = data.series("uncompressed")
        study_uid, series_uid = data.study_uid, series.series_uid
        ca, auth = str(pacs.certificates.ca_file), pacs.admin_auth
        direct = ServerConfig(name="bench", url=pacs.base_url, ca_file=ca)
        forced = msgspec.structs.replace(direct, series_retrieve=False)
        url = f"{pacs.base_url}/studies/{study_uid}/series/{series_uid}"
        with run_quirks_front(
            workdir=Path(tmp) / "quirks",
            orthanc_url=pacs.orthanc_url,
            leaf_cert=str(pacs.certificates.leaf_cert),
            leaf_key=str(pacs.certificates.leaf_key),
            ca_file=ca,
        ) as front:
            front_config = ServerConfig(name="quirks", url=front.base_url, ca_file=ca)
            front_url = f"{front.base_url}/studies/{study_uid}/series/{series_uid}"
            in_flight = (1, 2, 4, 6, 8)
            curl_t: list[float] = []
            single: list[float] = []
            tuned: dict[int, list[float]] = {n: [] for n in in_flight}
            proxy_stream: list[float] = []
            proxy_fallback: list[float] = []
            refused: list[float] = []
            parts_once(direct, auth, study_uid, series_uid)  # warm caches and imports
            for _ in range(rounds):  # interleaved: drift affects every variant alike
                curl_t.append(curl_once(url, ca, auth)[1])
                single.append(parts_once(direct, auth, study_uid, series_uid)[0])
                for n in in_flight:
                    tuned[n].append(
                        parts_once(forced, auth, study_uid, series_uid, fallback_in_flight=n)[0]
                    )
                # The proxy alone: the same two modes through it.
                proxy_stream.append(curl_once(front_url, ca, auth)[1])
                proxy_fallback.append(
                    parts_once(
                        msgspec.structs.replace(front_config, series_retrieve=False),
                        auth, study_uid, series_uid,
                    )[0]
                )  # fmt: skip
                # As a client meets AWS HealthImaging: refused, then instance by instance
                # (a fresh config each round, so nothing is remembered).
                with front.switched(series_retrieve=400):
                    fresh = msgspec.structs.replace(front_config, id=f"round-{len(refused)}")
                    refused.append(parts_once(fresh, auth, study_uid, series_uid)[0])

            # Discovery (`servers discover` without the CLI's start-up) in both layouts.
            found: dict[str, tuple[list[float], int, str]] = {}
            for label, url in (
                ("Zhiva layout", pacs.origin),
                ("dcm4chee layout", f"{pacs.origin}/dcm4chee-arc"),
            ):
                times, requests, layout = [], 0, ""
                for _ in range(rounds):
                    result = discover(
                        url,
                        base=ServerConfig(ca_file=ca, auth_type="basic", username=auth[0]),
                        auth=httpx.BasicAuth(*auth),
                    )
                    times.append(result.seconds)
                    requests, layout = result.requests, result.layout
                found[label] = (times, requests, layout)

    median = statistics.median
    base = median(single)
    print(
        f"series: {len(series.sop_uids)} instances of {series.rows}x{series.cols}; {rounds} rounds"
    )
    print(summary("curl (one request)", curl_t, None))
    print(summary("ours: one stream (iter_series_parts)", single, curl_t))
    for n, times in tuned.items():
        mark = "  <- FALLBACK_IN_FLIGHT" if n == FALLBACK_IN_FLIGHT else ""
        print(
            summary(f"ours: instance by instance, {n} in flight", times, curl_t)
            + f"   {median(times) / base:4.2f}x one stream{mark}"
        )
    print(
        f"{'quirks front alone: curl stream':<34} median {median(proxy_stream) * 1000:8.1f} ms"
        f"   {median(proxy_stream) / median(curl_t):5.2f}x curl direct"
    )
    print(
        f"{'quirks front alone: by instance':<34} median {median(proxy_fallback) * 1000:8.1f} ms"
        f"   {median(proxy_fallback) / median(tuned[FALLBACK_IN_FLIGHT]):5.2f}x the same direct"
    )
    print(
        f"{'through the front, series refused':<34} median {median(refused) * 1000:8.1f} ms"
        f"   {median(refused) / base:4.2f}x one stream direct"
    )
    print("target: instance by instance <= 2.5x the one stream, on the test PACS without the proxy")
    for label, (times, requests, layout) in found.items():
        print(
            f"{'discover, ' + label:<34} median {median(times) * 1000:8.1f} ms, {requests} requests"
            f" (found {layout}; limits: 25 requests, 10 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
