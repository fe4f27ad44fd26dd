"""Ingest throughput and peak memory: `deeprc ingest` against plain reference readers.

Makes (once, cached under benchmarks/data/) a synthetic AIRR input of N rows in gzip files with
all 14 required AIRR columns (see make_airr.py), then runs, each as its own process so that
start-up and peak memory are measured the same way:

- `deeprc ingest` end to end (gzip decode, filters, Parquet, encoded arrays), 2 workers;
- pandas `read_csv` of each file (all columns, C engine), one file after another;
- `airr.read_rearrangement` of the first files (the AIRR reference reader; slow, so a subset).

Peak RSS is the largest sum of resident memory over the whole process tree, sampled every 10 ms
(pages shared after fork are counted once per process, so this over-states). Each command runs
--repeat times and the fastest run is reported: timings on a shared 2-core VM vary by ±20%.

    python benchmarks/ingest.py --rows 2000000 --files 20
    python benchmarks/ingest.py --rows 10000000 --files 100
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from make_airr import write_dataset  # noqa: E402

PANDAS = """
import sys, pandas as pd
n = 0
for path in sys.argv[1:]:
    n += len(pd.read_csv(path, sep="\\t", dtype=str, keep_default_na=False))
print(n)
"""
AIRR = """
import sys, airr
n = 0
for path in sys.argv[1:]:
    for _ in airr.read_rearrangement(path):
        n += 1
print(n)
"""


def _tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of a process and all its descendants, and the anonymous part of them
    (without the file pages it maps, such as a memory-mapped store: page cache that the kernel
    drops under memory pressure)."""
    total, anonymous, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{p}/status").read_text().splitlines()
            )
            total += int(status["VmRSS"].split()[0])
            anonymous += int(status["RssAnon"].split()[0]) + int(status["RssShmem"].split()[0])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, KeyError):
            continue
    return total * 1024, anonymous * 1024


def measure(cmd: list[str], repeat: int) -> tuple[float, int, str]:
    """Fastest wall seconds, largest peak tree RSS in bytes, and stdout of a command."""
    runs = [_measure_once(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[0][2]


def _measure_once(cmd: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with peak_rss(proc) as peak:
        out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{err}")
    return elapsed, peak[0], out


@contextmanager
def peak_rss(proc: subprocess.Popen):
    """While the block waits for ``proc``, the largest tree RSS and the largest anonymous part
    of it in bytes, sampled every 10 ms (read ``[0]`` and ``[1]`` of the yielded list after the
    block)."""
    peak, done = [0, 0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[:] = map(max, peak, _tree_rss(proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--airr-files", type=int, default=2, help="files read by the airr reader")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layout", choices=["full", "sparse"], default="full")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = HERE / "data" / f"airr_{args.layout}_{args.rows}_{args.files}"
    metadata = write_dataset(data, args.files, args.rows // args.files, seed=0, layout=args.layout)
    files = sorted(str(p) for p in data.glob("*.tsv.gz"))
    gz_bytes = sum(os.path.getsize(f) for f in files)
    out = HERE / "data" / "store"
    shutil.rmtree(out, ignore_errors=True)

    deeprc = [sys.executable, "-m", "deeprc.cli", "ingest", "--metadata", str(metadata)]
    deeprc += ["--label-column", "status", "--out", str(out), "--threads", str(args.threads)]
    rows = {"deeprc ingest": args.rows}
    results = {"deeprc ingest": measure([*deeprc, "--overwrite"], args.repeat)}
    results["pandas read_csv"] = measure([sys.executable, "-c", PANDAS, *files], args.repeat)
    subset = files[: args.airr_files]
    results["airr.read_rearrangement"] = measure([sys.executable, "-c", AIRR, *subset], args.repeat)
    rows["pandas read_csv"] = int(results["pandas read_csv"][2])
    rows["airr.read_rearrangement"] = int(results["airr.read_rearrangement"][2])
    shutil.rmtree(out, ignore_errors=True)

    ours = rows["deeprc ingest"] / results["deeprc ingest"][0]
    with gzip.open(files[0]) as first:
        text_bytes = len(first.read()) * len(files)
    print(
        f"input: {args.rows:,} {args.layout} rows in {args.files} gzip files, "
        f"{gz_bytes / 1e6:.0f} MB gzip, ~{text_bytes / args.rows:.0f} bytes/row of text; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n"
    )
    print("| reader | rows | seconds | rows/s | deeprc speed-up | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (seconds, peak, _) in results.items():
        rate = rows[name] / seconds
        print(
            f"| {name} | {rows[name]:,} | {seconds:.2f} | {rate:,.0f} | {ours / rate:.1f}x"
            f" | {peak / 2**20:.0f} |"
        )


if __name__ == "__main__":
    main()
