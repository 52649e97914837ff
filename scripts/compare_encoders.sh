#!/usr/bin/env bash
# Encoder x learner comparison on a synthetic stream, offline: a random-initialised encoder against a
# project-pretrained one. Source and target are two disjoint groups of 20 identities of the synthetic
# Olivetti faces (one face generator, so the source is related to the target without sharing classes):
# the encoder is pretrained on identities 20-39 (task 2 of the stream, year 2001) and the learners run on
# identities 0-19 only (task 1, year 2000; --stop-year 2001), 10 training images per identity.
# Usage: scripts/compare_encoders.sh [OUT_DIR] (default results/compare_encoders); STEPS=... for pretraining.
set -euo pipefail
OUT=${1:-results/compare_encoders}
STEPS=${STEPS:-300}
DATA=${NEVIS_BENCH_DATA_DIR:-$HOME/.cache/nevis-bench}
OPTIONS=(--stream-option base=olivetti_face --stream-option tasks=2 --stream-option classes_per_task=20
         --stream-option train_per_class=10 --stream-option eval_per_class=10)
mkdir -p "$OUT"
nevis-bench pretrain --stream synthetic-class-incremental "${OPTIONS[@]}" --task olivetti_face_classes_20_39 \
  --steps "$STEPS" --data-dir "$DATA" --output "$OUT/pretrained_small_convnet.pt" --quiet
nevis-bench compare-encoders --encoders "random:small_convnet,file:$OUT/pretrained_small_convnet.pt" \
  --learners linear_probe,knn,ncm,latent_replay --stream synthetic-class-incremental "${OPTIONS[@]}" \
  --stop-year 2001 --runs-dir "$OUT/runs" --data-dir "$DATA" --output "$OUT" --quiet
