#!/usr/bin/env bash
# This checkout against an older one (e.g. 79df9e1, before deeprc 0.3, or 7c060cc, checked out
# or `git archive`d at $1), interleaved: benchmarks/train_step.py from each, and
# `deeprc train` end to end (60 steps, default k-mer evidence) and `deeprc predict` on a
# simulated cohort of 40 x 20,000 sequences. Usage: benchmarks/before_after.sh OLD WORKDIR
set -euo pipefail
OLD=$(realpath "$1")
NEW=$(realpath "$(dirname "$0")/..")
PY=${PYTHON:-python}
mkdir -p "$2" && cd "$2"
if [ ! -d store ]; then
  $PY -m deeprc.cli simulate --config /dev/stdin --out sim --threads 2 <<'YAML' > /dev/null
n_repertoires: 40
n_sequences: 20000
seed: 11
motifs: [{name: m, motif: SLRF, witness_rate: 0.005}]
YAML
  $PY -m deeprc.cli ingest --metadata sim/metadata.tsv --label-column status --out store > /dev/null
  $PY -m deeprc.cli split --store store --out folds.tsv --k 5 > /dev/null
fi
printf 'evidence: [{name: kmer, k: 4}]\nweigh_evidence: false\ntrain: {max_steps: 60, eval_every: 30, patience: 100}\n' > after.yaml
if grep -q weigh_evidence "$OLD/deeprc/experiment.py" 2>/dev/null; then
  cp after.yaml before.yaml  # deeprc 0.4 and later read the same file
else
  printf 'model: {kmer_evidence: 4}\ntrain: {max_steps: 60, eval_every: 30, patience: 100}\n' > before.yaml
fi
for round in 1 2; do
  for side in before after; do
    if [ $side = before ]; then export PYTHONPATH=$OLD; SRC=$OLD; else unset PYTHONPATH; SRC=$NEW; fi
    echo "=== round $round $side"
    $PY $SRC/benchmarks/train_step.py --repeat 10 2>&1 | grep -v "^$"
    rm -rf m_$side.pt m_$side.work p_$side
    s=$(date +%s.%N)
    $PY -m deeprc.cli train --store store --folds folds.tsv --fold 0 --experiment $side.yaml \
      --out m_$side.pt --threads 2 --no-progress > train_$side.log 2>&1
    e=$(date +%s.%N)
    echo "deeprc train 60 steps (40 x 20,000, k-mer evidence): $(echo "$e - $s" | bc) s"
    s=$(date +%s.%N)
    $PY -m deeprc.cli predict --store store --model m_$side.pt --out p_$side --threads 2 > /dev/null 2>&1
    e=$(date +%s.%N)
    echo "deeprc predict whole store (800,000 sequences): $(echo "$e - $s" | bc) s"
  done
done
unset PYTHONPATH
$PY - <<'PYEOF'
import pandas as pd
a = pd.read_csv("p_before/predictions.tsv", sep="\t"); b = pd.read_csv("p_after/predictions.tsv", sep="\t")
print("predictions identical before/after:", a.equals(b), "max |logit diff|", (a.logit - b.logit).abs().max())
PYEOF
