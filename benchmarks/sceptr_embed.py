"""SCEPTR embedding throughput: the package's DataFrame API against deeprc's batched path.

    python benchmarks/sceptr_embed.py            # needs the extra: pip install -e '.[sceptr]'

Makes a store of the antigen_mira_2 preset (200 real TRB repertoires x 5,000 sequences) and
measures, on its distinct clonotypes whose V gene SCEPTR reads:

1. before: ``calc_vector_representations`` of sceptr 1.2.0 (a DataFrame of V gene and
   junction; one libtcrlm object per row) on ``--before`` clonotypes, on all of PyTorch's
   threads;
2. after: deeprc's cache of the whole store (``deeprc.features.pretrained``: tokens built from
   the store, length-sorted batches, one one-thread worker per core), end to end, and the same
   with one worker (clonotypes per second includes finding the distinct clonotypes and
   writing the cache);

as clonotypes per second, the time per 10^6 distinct clonotypes, the largest difference between
the two paths' vectors, and the cache's disk against the store's encoded arrays.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent


def deeprc(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "deeprc.cli", *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=int, default=5000, help="clonotypes for the API")
    args = parser.parse_args()
    from sceptr._model_saves import load_variant

    from deeprc.features import pretrained
    from deeprc.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        deeprc("simulate", "--config", REPO / "configs/simulate/antigen_mira_2.yaml",
               "--out", tmp / "cohort")  # fmt: skip
        deeprc("ingest", "--metadata", tmp / "cohort/metadata.tsv", "--out", tmp / "store",
               "--label-column", "status", "--no-progress")  # fmt: skip
        store = Store(tmp / "store")
        runs = {}
        cores = torch.get_num_threads()
        for workers in (1, cores):
            shutil.rmtree(store.path / f"pretrained_{pretrained.SCEPTR}", ignore_errors=True)
            torch.set_num_threads(workers)  # the workers the cache forks (deeprc --threads)
            started = time.perf_counter()
            vectors = pretrained.pretrained_vectors(store, device=torch.device("cpu"))
            runs[workers] = (time.perf_counter() - started, vectors.summary)
        summary = runs[cores][1]
        n = summary["n_clonotypes_embedded"]

        # the API on the first --before distinct clonotypes the cache holds
        rows, first = np.unique(np.asarray(vectors.rows[:]), return_index=True)
        first = first[rows > 0][: args.before]
        parts = pd.concat([store.sequences(r) for r in range(len(store.repertoires))])
        frame = pd.DataFrame({"TRBV": parts["v_call"].to_numpy()[first],
                              "CDR3B": parts["junction_aa"].to_numpy()[first]})  # fmt: skip
        model = load_variant(pretrained.SCEPTR)
        started = time.perf_counter()
        theirs = model.calc_vector_representations(frame)
        before = len(frame) / (time.perf_counter() - started)
        difference = float(np.abs(vectors(first).astype(np.float32) - theirs).max())
        encoded = sum(f.stat().st_size for f in (store.path / "encoded").iterdir())

    after = {k: n / s for k, (s, _) in runs.items()}
    print(json.dumps({
        "distinct_clonotypes": n,
        "rows": summary["n_rows"],
        "cores": cores,
        "before_api_per_s": round(before),
        "after_per_s": round(after[cores]),
        "after_one_worker_per_s": round(after[1]),
        "speedup": round(after[cores] / before, 1),
        "seconds_per_million": round(1e6 / after[cores]),
        "max_abs_difference": difference,
        "cache_bytes": summary["disk_bytes"],
        "encoded_bytes": encoded,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
