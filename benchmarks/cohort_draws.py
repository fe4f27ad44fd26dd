"""Cohort designs drawn at random from a declared space, for `accuracy.py --draws N --seed S`.

A recipe tuned on the presets of configs/simulate/ can look good there and fail elsewhere; a
design drawn from this space was seen by nobody. Draw ``i`` of seed ``S`` depends on ``(S, i)``
only, so ``--draws 20`` repeats the 10 draws of ``--draws 10`` and adds 10 more.

The space (issue 25's, with the sizes scaled down so that a draw's 5-fold CV of the model and
every baseline takes minutes on 2 cores; the scaling is said in every table):

- 100-200 repertoires (steps of 10) x 2,000-5,000 sequences (log-uniform), 30-50% positives,
  0-10% of labels flipped; background: OLGA's human TRB model or the real TRB rearrangements of
  data/real_background (one half each).
- 1-5 signals, each of a kind drawn from three (a draw "mixes kinds" when it holds two):
  - ``motif``: carried by its own random 30-100% of the positives and 0-10% of the negatives
    (so a positive may carry none, and a negative some); 3-6 positions of which 0-2 interior
    ones are wildcards (three residues stay fixed: any two are common in a background), 0-20%
    substitutions per fixed residue, witness rate 0.02-2% (log-uniform), restricted to one V
    gene in 1 of 5 (then at most 0.5%: five genes of 5-10% of the sequences each);
  - ``gapped``: two motifs of four fixed residues over six positions (masks of the 2025 AIRR-ML
    benchmark's gapped-k-mer datasets), each at the signal's witness rate (0.02-2%), carriers
    and substitutions as a motif's;
  - ``public``: 10-50 disease-associated clonotypes (junction + V + J), each present in a
    positive repertoire with probability 0.05-0.3 and in a negative one with 0-10% of that.
"""

from __future__ import annotations

import math

import numpy as np

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
REAL_BACKGROUND = "data/real_background/immunarch_trb.tsv.gz"
V_GENES = ("TRBV20-1", "TRBV5-1", "TRBV29-1", "TRBV28", "TRBV7-9")
GAPPED_MASKS = ("XX..XX", "X.X.XX", "XX.X.X", "X..XXX", "XXX..X", "X.XX.X")
KINDS = ("motif", "gapped", "public")
V_RESTRICTED_RATE = 0.005


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _residues(rng: np.random.Generator, mask: str) -> str:
    return "".join(AMINO_ACIDS[rng.integers(20)] if c == "X" else "." for c in mask)


def _contiguous_mask(rng: np.random.Generator) -> str:
    length = int(rng.integers(3, 7))
    interior = list(range(1, length - 1))
    n_gaps = min(int(rng.integers(0, 3)), length - 3)  # three fixed residues at least
    gaps = rng.choice(interior, n_gaps, replace=False)
    return "".join("." if i in set(gaps.tolist()) else "X" for i in range(length))


def draw_design(seed: int, index: int, repo: str) -> dict:
    """The simulation config (a dict for `deeprc simulate --config`) of draw ``index``."""
    rng = np.random.default_rng([seed, index])
    design: dict = {
        "n_repertoires": int(rng.integers(10, 21)) * 10,
        "n_sequences": int(round(_log_uniform(rng, 2000, 5000), -2)),
        "positive_fraction": round(float(rng.uniform(0.3, 0.5)), 2),
        "label_noise": round(float(rng.uniform(0.0, 0.1)), 3),
        "model": "human_T_beta",
        "seed": int(rng.integers(2**31)),
    }
    if rng.random() < 0.5:
        design["background"] = f"{repo}/{REAL_BACKGROUND}"
    motifs, public = [], []
    for s in range(int(rng.integers(1, 6))):
        kind = KINDS[rng.integers(len(KINDS))]
        carriers = {
            "repertoire_fraction": round(float(rng.uniform(0.3, 1.0)), 2),
            "negative_fraction": round(float(rng.uniform(0.0, 0.1)), 3),
        }
        if kind == "public":
            presence = round(float(rng.uniform(0.05, 0.3)), 3)
            public.append(
                {
                    "name": f"s{s}_public",
                    "n_clonotypes": int(rng.integers(10, 51)),
                    "presence": presence,
                    "negative_presence": round(presence * float(rng.uniform(0, 0.1)), 4),
                }
            )
            continue
        rate = round(_log_uniform(rng, 0.0002, 0.02), 5)
        substitution = round(float(rng.uniform(0.0, 0.2)), 3)
        if kind == "gapped":
            masks = rng.choice(GAPPED_MASKS, 2, replace=False)
            patterns = [_residues(rng, str(mask)) for mask in masks]
        else:
            patterns = [_residues(rng, _contiguous_mask(rng))]
        v_genes = [str(rng.choice(V_GENES))] if kind == "motif" and rng.random() < 0.2 else []
        if v_genes:  # a V gene holds ~5-10% of the sequences: two motifs must fit in it
            rate = min(rate, V_RESTRICTED_RATE)
        for part, pattern in enumerate(patterns):
            motif = {
                "name": f"s{s}_{kind}{'ab'[part] if len(patterns) > 1 else ''}",
                "motif": pattern,
                "witness_rate": rate,
                "substitution_rate": substitution,
                **carriers,
            }
            if v_genes:
                motif["v_genes"] = v_genes
            motifs.append(motif)
    if motifs:
        design["motifs"] = motifs
    if public:
        design["public_clonotypes"] = public
    return design


def kinds_of(design: dict) -> list[str]:
    """The kinds of signal a design holds, in order (a name's suffix after ``sN_``)."""
    names = [m["name"] for m in design.get("motifs", [])]
    names += [p["name"] for p in design.get("public_clonotypes", [])]
    kinds = [name.split("_", 1)[1].rstrip("ab") for name in names]
    return list(dict.fromkeys("gapped" if k.startswith("gapped") else k for k in kinds))


def summary(design: dict) -> str:
    """One table cell: sizes, background, and each signal in a few characters."""
    head = (
        f"{design['n_repertoires']}x{design['n_sequences']} "
        f"{'real' if 'background' in design else 'olga'} "
        f"pos {design['positive_fraction']:.2f} noise {design['label_noise']:.2f}"
    )
    parts = []
    for m in design.get("motifs", []):
        if m["name"].endswith("gappedb"):
            parts[-1] = parts[-1].replace(" at", f"+{m['motif']} at")
            continue
        v = f" {m['v_genes'][0]}" if "v_genes" in m else ""
        rates = f"{100 * m['witness_rate']:.2g}% sub {100 * m['substitution_rate']:.0f}%"
        shares = f"{100 * m['repertoire_fraction']:.0f}%/{100 * m['negative_fraction']:.0f}%"
        parts.append(f"{m['motif']} at {rates} in {shares}{v}")
    for p in design.get("public_clonotypes", []):
        parts.append(
            f"{p['n_clonotypes']} public p {p['presence']:.2f}/{p['negative_presence']:.3f}"
        )
    return head + "; " + "; ".join(parts)
