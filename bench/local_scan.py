"""Benchmark the local scan: time to the first study listed and to the whole list.

Run:  .venv/bin/python bench/local_scan.py [--files 10000] [--rounds 3]

A folder of small DICOM files (32x32 16-bit, ~2.6 KB each; 50 instances per study, a
folder per study) is generated once under the system temp dir. Each round, with the
page cache warm for both, interleaved:

* baseline: `find DIR -type f`, then `pydicom.dcmread(path, stop_before_pixels=True)`
  on each file in `find`'s order — the least a scanner that reads every header does;
  its "first study" is the moment the first header has been read;
* ours: `LocalFolderSource(DIR).start_scan(...)` as File > Open runs it — "first study"
  when `search_studies()` (asked from the progress callback) first lists a study,
  "whole list" when the scan reports done and `search_studies()` returns every study.

Prints medians and the ratios ours / baseline. Nothing here asserts; tests never time
anything.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402

PER_STUDY = 50


def generate(root: Path, files: int) -> Path:
    folder = root / f"zhiva-bench-local-{files}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pixels = (np.arange(32 * 32, dtype=np.uint16) % 4096).tobytes()
    study = series = ""
    for n in range(files):
        if n % PER_STUDY == 0:
            study, series = generate_uid(), generate_uid()
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID = f"Bench^{n // PER_STUDY:05d}", f"B{n // PER_STUDY:05d}"
        ds.StudyDate, ds.StudyTime, ds.Modality = "20240102", "101500", "CT"
        ds.StudyDescription, ds.SeriesDescription = "Bench study", "Bench series"
        ds.SeriesNumber, ds.InstanceNumber = 1, n % PER_STUDY + 1
        ds.ImagePositionPatient = [0, 0, n % PER_STUDY]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 1
        ds.Rows = ds.Columns = 32
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = pixels
        path = folder / f"study{n // PER_STUDY:05d}" / f"IM{n % PER_STUDY:04d}.dcm"
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    marker.write_text("ok")
    return folder


def baseline(folder: Path) -> tuple[float, float, int]:
    start = time.perf_counter()
    listing = subprocess.run(
        ["find", str(folder), "-type", "f", "-name", "*.dcm"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    first = 0.0
    studies: set[str] = set()
    for n, path in enumerate(listing):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        studies.add(str(ds.StudyInstanceUID))
        if n == 0:
            first = time.perf_counter() - start
    return first, time.perf_counter() - start, len(studies)


def ours(folder: Path) -> tuple[float, float, int]:
    from viewer.loader import LocalFolderSource, ScanProgress

    source = LocalFolderSource(folder)
    marks: dict[str, float] = {}
    done = threading.Event()
    start = time.perf_counter()

    def on_progress(progress: ScanProgress) -> None:
        if "first" not in marks and source.search_studies(limit=1):
            marks["first"] = time.perf_counter() - start
        if progress.done:
            done.set()

    source.start_scan(on_progress)
    done.wait()
    count = len(source.search_studies())
    total = time.perf_counter() - start
    source.close()
    return marks.get("first", float("nan")), total, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = generate(Path(tempfile.gettempdir()), args.files)
    expected = -(-args.files // PER_STUDY)
    baseline(folder), ours(folder)  # warm the page cache and the imports
    results: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
    for _ in range(args.rounds):
        for name, fn in (("baseline", baseline), ("ours", ours)):
            first, total, count = fn(folder)
            assert count == expected, (name, count, expected)
            results[name].append((first, total))
    med = {k: (statistics.median(f for f, _ in v), statistics.median(t for _, t in v))
           for k, v in results.items()}  # fmt: skip
    print(f"{args.files} files, {expected} studies, {args.rounds} rounds, medians:")
    for name, (first, total) in med.items():
        print(f"  {name:9s} first study {first * 1000:8.1f} ms   whole list {total:7.2f} s")
    (bf, bt), (of, ot) = med["baseline"], med["ours"]
    print(f"  ratio ours/baseline: first study {of / bf:.2f}x, whole list {ot / bt:.2f}x")


if __name__ == "__main__":
    main()
