#!/usr/bin/env bash
# Trains emoji-128 on a GPU machine in ONE call of the device tool (about 9 minutes), and leaves
# its weights in one file under $OUT/emoji-128/. The stages are the default model's recipe
# (models/emoji-ldm/recipe/gpu_train.sh) with this model's config, bf16 autocast and larger batches.
#
#   here:    bash models/emoji-128/recipe/pack.sh                  # .train128/ (the dataset, ~28 MiB)
#   device:  bash models/emoji-128/recipe/gpu_train.sh             # carry [".train128"], timeout_s 600
#   here:    bash models/emoji-128/recipe/ship.sh <files_at>/emoji-128/weights.npz
#
# RETRAIN_LDM=1 (optional; carry ".train" too, made by pack.sh with LDM=1) retrains the default
# model beside it on the same GPU, with the style word dropped from 30% of its captions
# (models/emoji-ldm/recipe/config-style-drop.json); its weights land in $OUT/emoji-ldm/.
# BUDGET_S (default 510) bounds both trainings, from the start of each to its last stage; the call
# ends about 20 s after it. Other settings: UNET_BATCH (512), UNET_LR (6e-4), AE_MIN (1.5), DEC_MIN
# (0.6), CLS_MIN (0.4), THREADS (8), AMP (bf16; none: fp32 with TF32), CARRY (.train128), PYTHON.
set -uo pipefail
cd "$(dirname "$0")/../../.."
out="${OUT:-/tmp/gpu_train_out}"
mkdir -p "$out"
export BUDGET_S="${BUDGET_S:-510}" GPU_CHECK=0
ldm_pid=""
if [ "${RETRAIN_LDM:-0}" = 1 ]; then
  if [ -d .train ]; then
    (OUT="$out/emoji-ldm" RUN=emoji-ldm-sd CARRY=.train THREADS=4 \
      CONFIG=models/emoji-ldm/recipe/config-style-drop.json \
      bash models/emoji-ldm/recipe/gpu_train.sh > /dev/null 2>&1) &
    ldm_pid=$!
    echo "emoji-ldm (style word dropped) retraining beside, pid $ldm_pid: $out/emoji-ldm/train.out"
  else
    echo "RETRAIN_LDM=1 but no .train/ was carried: emoji-ldm not retrained"
  fi
fi
OUT="$out/emoji-128" RUN=emoji-128 CARRY="${CARRY:-.train128}" CONFIG=models/emoji-128/recipe/config.json \
  AMP="${AMP:-bf16}" AE_BATCH="${AE_BATCH:-128}" UNET_BATCH="${UNET_BATCH:-512}" UNET_LR="${UNET_LR:-6e-4}" \
  CLS_BATCH="${CLS_BATCH:-256}" AE_MIN="${AE_MIN:-1.5}" DEC_MIN="${DEC_MIN:-0.6}" CLS_MIN="${CLS_MIN:-0.4}" \
  THREADS="${THREADS:-8}" bash models/emoji-ldm/recipe/gpu_train.sh
rc=$?
if [ -n "$ldm_pid" ]; then
  wait "$ldm_pid" && echo "emoji-ldm retrain: done" || echo "emoji-ldm retrain: failed (see its train.out)"
fi
ls -la "$out"/*/ 2>/dev/null
exit $rc
