"""Training-step speed (lookup embedding vs dense one-hot conv1d), prediction speed and memory.

    python benchmarks/train_step.py

1. One training step at the default sizes (16 repertoires x 10,000 sequences, DeepRC
   architecture, Adam), as `deeprc.train.fit` runs it: with the default top_fraction 0.1 (a
   no-gradient pass over all sequences, forward+backward through the top 10%) and with
   top_fraction 1.0 (forward+backward through all). The same model with the dense one-hot Conv1d
   embedding is the reference, measured in the same run; median of --repeat steps.
2. `deeprc predict` on one repertoire of 1,000,000 sequences (made with make_airr.py and
   ingested), end to end as a command: sequences/s and peak RSS of the process tree.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from ingest import measure  # noqa: E402
from make_airr import write_file  # noqa: E402

from deeprc.classifier import RepertoireClassifier  # noqa: E402
from deeprc.data import Batch  # noqa: E402
from deeprc.experiment import Experiment  # noqa: E402
from deeprc.features import FeatureSet  # noqa: E402
from deeprc.model import build_model  # noqa: E402
from deeprc.train import top_sequences  # noqa: E402

JUNCTION_ONLY = Experiment(evidence=())  # no evidence fitted here


def step_seconds(embedding: str, top_fraction: float, repeat: int) -> float:
    experiment = JUNCTION_ONLY  # k-mer evidence adds one input column beside the 32 kernels
    encoder = experiment.model.encoder | {"implementation": embedding}
    model = build_model(replace(experiment.model, encoder=encoder), seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    batch, n, width = experiment.train.batch_size, experiment.train.n_sequences, 31
    # TRB junction lengths (mean ~15) in a store as wide as the simulated cohorts' (31)
    lengths = torch.from_numpy(rng.normal(15, 2.5, (batch, n)).round().clip(8, 25).astype(np.int64))
    tokens = torch.from_numpy(rng.integers(1, 21, (batch, n, width)).astype(np.uint8))
    tokens[torch.arange(width) >= lengths[..., None]] = 0
    y = torch.arange(batch, dtype=torch.float32) % 2
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        chosen = Batch(tokens, lengths)
        if top_fraction < 1:
            chosen = top_sequences(model, chosen, top_fraction)
        logits, _ = model(chosen.tokens, chosen.lengths)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first step warms up


def predict_rate(n_sequences: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        write_file(data / "big.tsv.gz", n_sequences, seed=1, layout="sparse")
        write_file(data / "small.tsv.gz", 1000, seed=2, layout="sparse")
        (data / "metadata.tsv").write_text(
            "repertoire_id\tfile\tstatus\nbig\tbig.tsv.gz\t1\nsmall\tsmall.tsv.gz\t0\n"
        )
        deeprc = [sys.executable, "-m", "deeprc.cli"]
        subprocess.run(
            [*deeprc, "ingest", "--metadata", str(data / "metadata.tsv"), "--label-column",
             "status", "--out", str(root / "store")],
            check=True, capture_output=True,
        )  # fmt: skip
        model = root / "model.pt"
        record = {"store_fingerprint": "", "train_ids": [], "validation_ids": [], "steps": 0,
                  "history": []}  # fmt: skip
        network = build_model(JUNCTION_ONLY.model, seed=0)
        RepertoireClassifier(JUNCTION_ONLY, FeatureSet([]), network, record=record).save(model)
        seconds, peak, _ = measure(
            [*deeprc, "predict", "--store", str(root / "store"), "--model", str(model),
             "--out", str(root / "predictions"), "--threads", "2"],
            repeat=1,
        )  # fmt: skip
        kept = int(np.load(root / "store" / "encoded" / "offsets.npy")[-1])
    return kept / seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--predict-sequences", type=int, default=1_000_000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| training step (16 x 10,000 sequences) | dense conv1d (s) | lookup (s) | speed-up |")
    print("|---|---:|---:|---:|")
    for top in (0.1, 1.0):
        dense = step_seconds("dense", top, args.repeat)
        lookup = step_seconds("lookup", top, args.repeat)
        print(f"| top_fraction {top} | {dense:.3f} | {lookup:.3f} | {dense / lookup:.1f}x |")
    rate, peak = predict_rate(args.predict_sequences)
    print(
        f"\ndeeprc predict, one repertoire of ~{args.predict_sequences:,} sequences: "
        f"{rate:,.0f} sequences/s end to end, peak RSS {peak / 2**30:.2f} GiB"
    )


if __name__ == "__main__":
    main()
