#!/usr/bin/env bash
# Encoder x learner comparison on a synthetic stream, offline: a random-initialised encoder against a
# project-pretrained one (pretrained first on other classes of the same synthetic source).
# Usage: scripts/compare_encoders.sh [OUT_DIR] (default results/compare_encoders); STEPS=... for pretraining.
set -euo pipefail
OUT=${1:-results/compare_encoders}
STEPS=${STEPS:-300}
DATA=${NEVIS_BENCH_DATA_DIR:-$HOME/.cache/nevis-bench}
mkdir -p "$OUT"
# source: classes 20-39 of the synthetic COIL-100 stand-in; target stream: classes 0-19
nevis-bench pretrain --stream synthetic-class-incremental --stream-option tasks=10 --stream-option classes_per_task=4 \
  --task coil100_classes_20_23 --task coil100_classes_24_27 --task coil100_classes_28_31 \
  --task coil100_classes_32_35 --task coil100_classes_36_39 --steps "$STEPS" --data-dir "$DATA" \
  -o "$OUT/pretrained_small_convnet.pt" --quiet
nevis-bench compare-encoders --encoders "random:small_convnet,file:$OUT/pretrained_small_convnet.pt" \
  --learners linear_probe,knn,ncm,latent_replay --stream synthetic-class-incremental \
  --runs-dir "$OUT/runs" --data-dir "$DATA" --out "$OUT" --quiet
