#!/usr/bin/env bash
# The gapped-k-mer burden test beside the k-mer regression and Emerson's test, 5 folds, on a
# simulated cohort. Usage: benchmarks/gapped_baselines.sh configs/simulate/X.yaml WORKDIR
# (resumes where it stopped; one line per baseline: fold AUCs, mean, seconds for 5 folds).
set -euo pipefail
PY=${PYTHON:-python}
config=$(realpath "$1")
name=$(basename "$1" .yaml)
mkdir -p "$2/$name" && cd "$2/$name"
[ -d sim ] || $PY -m deeprc.cli simulate --config "$config" --out sim --threads 2 > sim.log 2>&1
[ -d store ] || $PY -m deeprc.cli ingest --metadata sim/metadata.tsv --label-column status --out store > ingest.log 2>&1
[ -f folds.tsv ] || $PY -m deeprc.cli split --store store --out folds.tsv --k 5 > /dev/null
for b in gapped_kmer_burden kmer4_logistic emerson_burden; do
  s=$(date +%s)
  for k in 0 1 2 3 4; do
    [ -d b/$b/fold$k ] || $PY -m deeprc.cli baseline $b --store store --folds folds.tsv --fold $k --out b/$b/fold$k > /dev/null 2>&1
  done
  $PY -m deeprc.cli evaluate b/$b/fold* --out b/$b/metrics.json > /dev/null 2>&1
  $PY - "$b" "$(( $(date +%s) - s ))" <<'PYEOF'
import json, sys
m = json.load(open(f"b/{sys.argv[1]}/metrics.json"))
aucs = [f["roc_auc"] for f in m["folds"]]
s = m["summary"]["roc_auc"]
print(f"{sys.argv[1]:<20} folds {' / '.join(f'{a:.3f}' for a in aucs)}  mean {s['mean']:.3f} ± {s['sd']:.3f}  ({sys.argv[2]} s for 5 folds)")
PYEOF
done
