#!/usr/bin/env bash
# CUDA check (issue 4): 5-fold CV on configs/simulate/motif_1pct.yaml trained on the GPU with
# bfloat16 autocast, and fold 0 trained on the CPU in the same run, to compare AUCs.
# Usage: benchmarks/cuda_check.sh WORKDIR   (needs `deeprc` on PATH and a CUDA GPU)
set -euo pipefail
work=${1:?usage: cuda_check.sh WORKDIR}
mkdir -p "$work"
nvidia-smi -L
python3 -c "import torch; assert torch.cuda.is_available(); print('torch', torch.__version__)"
deeprc simulate --config configs/simulate/motif_1pct.yaml --out "$work/sim" --threads 8
deeprc ingest --metadata "$work/sim/metadata.tsv" --label-column status \
  --positive-label positive --out "$work/store" --threads 4
grep fingerprint "$work/store/manifest.json"
deeprc split --store "$work/store" --out "$work/folds.tsv" --k 5 --seed 0
exp=deeprc/experiments/default.yaml
timed() { local t0=$SECONDS; "$@"; echo "wall $((SECONDS - t0)) s: ${*:1:8}"; }
( timed deeprc train --store "$work/store" --folds "$work/folds.tsv" \
    --fold 0 --experiment $exp --out "$work/cpu/fold0.pt" --device cpu --threads 2 --no-progress
  deeprc predict --store "$work/store" --folds "$work/folds.tsv" --fold 0 \
    --model "$work/cpu/fold0.pt" --out "$work/cpu/pred0" --device cpu --threads 2
  deeprc evaluate "$work/cpu/pred0" --out "$work/cpu/metrics.json" ) > "$work/cpu.log" 2>&1 &
for fold in 0 1 2 3 4; do
  timed deeprc train --store "$work/store" \
    --folds "$work/folds.tsv" --fold $fold --experiment $exp --out "$work/cuda/fold$fold.pt" \
    --device cuda --threads 2 --no-progress
  deeprc predict --store "$work/store" --folds "$work/folds.tsv" --fold $fold \
    --model "$work/cuda/fold$fold.pt" --out "$work/cuda/pred$fold" --device cuda --threads 2
done
deeprc evaluate "$work"/cuda/pred? --out "$work/cuda/metrics.json"
wait
echo "CPU fold 0 (same run):"
cat "$work/cpu.log"
for name in cuda cpu; do
  python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(sys.argv[2], 'fold 0 test AUC', m['folds'][0]['roc_auc'])" "$work/$name/metrics.json" $name
done
