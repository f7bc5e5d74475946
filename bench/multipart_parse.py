"""Throughput of `net._multipart.MultipartParser` on a WADO-RS-sized answer.

The answer is one series as Orthanc sends frames: 300 parts of 512*512*2 bytes (158 MB)
with small headers, fed in the chunk sizes httpx's ``iter_raw`` yields. Baselines in the
same run: one copy of the whole body (``bytearray(body)``), one join of the chunks, and
one copy of each part's body dropped at once; and a bare ``bytes.find`` of the delimiter
over the chunks, the floor of any parser that searches. "Dropped" consumes each part as it arrives
(a streaming loader: freed memory is reused, so compare it with the per-part copy); "kept"
holds all 158 MB of bodies to the end (fresh pages, like the whole-body copy). Best of
``--repeat`` runs, interleaved.

    .venv/bin/python bench/multipart_parse.py [--parts 300] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from net._multipart import MultipartParser

FRAME_BYTES = 512 * 512 * 2
BOUNDARY = "3f4d1e0a-8c1b-4a55-9d0f-6c8e2b7a9e10"
CONTENT_TYPE = (
    'multipart/related; type="application/octet-stream; '
    f'transfer-syntax=1.2.840.10008.1.2.1"; boundary={BOUNDARY}'
)


def build_body(parts: int) -> bytes:
    rng = random.Random(1)
    frame = rng.randbytes(FRAME_BYTES)
    pieces: list[bytes] = []
    for i in range(parts):
        pieces.append(
            f"--{BOUNDARY}\r\n"
            "Content-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n"
            f"Content-Location: https://pacs/dicom-web/studies/1.2.3/series/4.5.6/instances/"
            f"7.8.{i}/frames/1\r\n\r\n".encode()
        )
        # Every frame differs a little so no two parts share pages.
        pieces.append(i.to_bytes(4, "big") + frame[4:])
        pieces.append(b"\r\n")
    pieces.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(pieces)


def copy_parts(body: bytes, spans: list[tuple[int, int]]) -> int:
    total = 0
    with memoryview(body) as view:
        for start, stop in spans:
            total += len(view[start:stop].tobytes())
    return total


def find_only(chunks: list[bytes]) -> int:
    delimiter = b"\r\n--" + BOUNDARY.encode()
    return sum(chunk.find(delimiter) for chunk in chunks)


def part_spans(body: bytes) -> list[tuple[int, int]]:
    spans = []
    start = body.find(b"\r\n\r\n") + 4
    while start >= 4:
        stop = body.find(b"\r\n--" + BOUNDARY.encode(), start)
        spans.append((start, stop))
        start = body.find(b"\r\n\r\n", stop) + 4
    return spans


def parse_dropping(chunks: list[bytes]) -> int:
    parser = MultipartParser(CONTENT_TYPE)
    total = 0
    for chunk in chunks:
        for part in parser.feed(chunk):
            total += len(part.body)
    parser.close()
    return total


def parse_keeping(chunks: list[bytes]) -> int:
    parser = MultipartParser(CONTENT_TYPE)
    kept = []
    for chunk in chunks:
        kept.extend(parser.feed(chunk))
    parser.close()
    return sum(len(part.body) for part in kept)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    body = build_body(args.parts)
    size = len(body)
    chunked = {
        "64 KiB": [body[i : i + 65536] for i in range(0, size, 65536)],
        "1 MiB": [body[i : i + (1 << 20)] for i in range(0, size, 1 << 20)],
    }
    expected = args.parts * FRAME_BYTES
    spans = part_spans(body)
    assert copy_parts(body, spans) == expected
    for label, chunks in chunked.items():
        assert parse_dropping(chunks) == expected, label

    cases: dict[str, Callable[[], object]] = {
        "memcpy: bytearray(body)": lambda: bytearray(body),
        "join of 64 KiB chunks": lambda: b"".join(chunked["64 KiB"]),
        "memcpy of each part, dropped": lambda: copy_parts(body, spans),
        "bytes.find over 64 KiB chunks": lambda: find_only(chunked["64 KiB"]),
    }
    for label, chunks in chunked.items():
        cases[f"parse {label} chunks, dropped"] = lambda c=chunks: parse_dropping(c)
        cases[f"parse {label} chunks, kept"] = lambda c=chunks: parse_keeping(c)

    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeat):
        for name, run in cases.items():
            start = time.perf_counter()
            result = run()
            best[name] = min(best[name], time.perf_counter() - start)
            del result

    memcpy = best["memcpy: bytearray(body)"]
    join = best["join of 64 KiB chunks"]
    part_copy = best["memcpy of each part, dropped"]
    print(f"{args.parts} parts, {size / 1e6:.1f} MB, best of {args.repeat}")
    print(f"{'case':34} {'ms':>8} {'MB/s':>8} {'x memcpy':>9} {'x join':>7} {'x part copy':>12}")
    for name, seconds in best.items():
        print(
            f"{name:34} {seconds * 1e3:8.1f} {size / seconds / 1e6:8.0f} "
            f"{seconds / memcpy:9.2f} {seconds / join:7.2f} {seconds / part_copy:12.2f}"
        )


if __name__ == "__main__":
    main()
