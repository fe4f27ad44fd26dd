"""Simulation throughput: `deeprc simulate` against OLGA's own single-process generation.

    python benchmarks/simulate.py --repertoires 200 --sequences 20000

Both are measured in the same run. OLGA's rate is that of `gen_rnd_prod_CDR3` in one process
(what a simulator that draws every sequence with OLGA would reach per core); deeprc's rate counts
every sequence written, end to end (OLGA pool in parallel processes, sampling, implanting, gzip).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deeprc.simulate import SimulationConfig, _draw_olga


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repertoires", type=int, default=200)
    parser.add_argument("--sequences", type=int, default=20_000)
    parser.add_argument("--olga-sequences", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    start = time.perf_counter()
    _draw_olga(("human_T_beta", args.olga_sequences, 0))
    olga_rate = args.olga_sequences / (time.perf_counter() - start)

    cfg = SimulationConfig(n_repertoires=args.repertoires, n_sequences=args.sequences)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            f"n_repertoires: {args.repertoires}\nn_sequences: {args.sequences}\nseed: 1\n"
            "motifs:\n  - {name: m, motif: SLRF, witness_rate: 0.01}\n"
        )
        out = Path(tmp) / "cohort"
        cmd = [sys.executable, "-m", "deeprc.cli", "simulate", "--config", str(config)]
        cmd += ["--out", str(out), "--threads", str(args.threads)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.iterdir())
        shutil.rmtree(out)
    total = args.repertoires * args.sequences
    print(
        f"cohort: {args.repertoires} x {args.sequences:,} sequences, pool "
        f"{cfg.resolved_pool_size:,}, {size / 1e6:.0f} MB gzip; {os.cpu_count()} CPUs\n"
    )
    print("| generator | sequences | seconds | sequences/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| OLGA gen_rnd_prod_CDR3, 1 process | {args.olga_sequences:,} "
        f"| {args.olga_sequences / olga_rate:.2f} | {olga_rate:,.0f} | 1.0x |"
    )
    print(
        f"| deeprc simulate, {args.threads} processes | {total:,} | {seconds:.2f} "
        f"| {total / seconds:,.0f} | {total / seconds / olga_rate:.1f}x |"
    )


if __name__ == "__main__":
    main()
