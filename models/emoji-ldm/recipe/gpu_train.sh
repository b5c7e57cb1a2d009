#!/usr/bin/env bash
# Trains a whole model of this recipe on a GPU machine in one call of the device tool, inside a
# fixed time budget, and leaves the weights in one portable file. For the default model, here:
#   /usr/bin/python3 models/emoji-ldm/recipe/carry_data.py pack /work/data/emoji.npz \
#       /work/data/vocab.json .train                       # the dataset, small enough to travel
#   bash bench/gpu_pack.sh                                   # optional: deno etc. for gpu_check.sh
# Device tool: `bash models/emoji-ldm/recipe/gpu_train.sh`, carry [".train", ".gpu"], then here:
#   cp <files_at>/weights.npz /work/data/run/ && /usr/bin/python3 train.py unpack && bash ship.sh
# Another model's recipe calls this script with its settings (models/emoji-128/recipe/gpu_train.sh).
#
# Stages: autoencoder (AE_MIN), decoder fine-tune (DEC_MIN), UNet + text encoder (whatever is
# left of BUDGET_S), classifier (CLS_MIN); the weights are packed after the UNet and again at the
# end, so a call cut short still returns a usable UNet. With .gpu/ carried, bench/gpu_check.sh
# runs beside the training (it shares the GPU: its figures say so).
#
# Environment (defaults: the default model's run): CONFIG (a model config JSON; none: emoji-ldm's),
# CARRY (.train: the packed dataset), RUN (emoji: /tmp/$RUN-run, /tmp/$RUN-data), OUT (where
# weights.npz, train.log and train.out go), AMP (none | bf16), AE_BATCH (128), UNET_BATCH (256),
# UNET_LR (5e-4), UNET_EMA (0.9995), CLS_BATCH (256), THREADS (4), BUDGET_S, AE_MIN, DEC_MIN,
# CLS_MIN, GPU_CHECK (1: run bench/gpu_check.sh beside, when .gpu/ is here).
set -uo pipefail
cd "$(dirname "$0")/../../.."
recipe=models/emoji-ldm/recipe
out="${OUT:-/tmp/gpu_train_out}"
mkdir -p "$out"
run="${RUN:-emoji}"
work=/tmp/$run-run data=/tmp/$run-data
py="${PYTHON:-python3}"
t0=$(date +%s)
BUDGET_S="${BUDGET_S:-500}" AE_MIN="${AE_MIN:-1.5}" DEC_MIN="${DEC_MIN:-0.7}" CLS_MIN="${CLS_MIN:-0.4}"
export PYTHONUNBUFFERED=1

exec > >(tee "$out/train.out") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$py" "$recipe/carry_data.py" unpack "${CARRY:-.train}" "$data" || exit 1

gpu_check_pid=""
if [ -d .gpu ] && [ "${GPU_CHECK:-1}" = 1 ]; then
  (IMAGES="${IMAGES:-3}" SPLIT_REPS="${SPLIT_REPS:-5}" OUT=/tmp/gpu_check_out \
    timeout "${GPU_CHECK_S:-330}" bash bench/gpu_check.sh > "$out/gpu_check.log" 2>&1
    tar -C /tmp/gpu_check_out -cf "$out/gpu_check.tar" .) &
  gpu_check_pid=$!
fi

config=()
[ -n "${CONFIG:-}" ] && config=(--config "$CONFIG")
stage() {
  "$py" "$recipe/train.py" "$@" --data "$data" --work "$work" --threads "${THREADS:-4}" \
    --amp "${AMP:-none}" "${config[@]}"
}
pack() { stage pack && cp "$work/weights.npz" "$out/weights.npz" && cp "$work/train.log" "$out/"; }

stage ae --minutes "$AE_MIN" --batch "${AE_BATCH:-128}" || exit 1
stage decoder --minutes "$DEC_MIN" --batch "${AE_BATCH:-128}" || exit 1
unet_min=$(awk -v left=$((t0 + BUDGET_S - 45 - $(date +%s))) 'BEGIN { printf "%.2f", left / 60 }')
echo "unet: $unet_min minutes"
stage unet --minutes "$unet_min" --batch "${UNET_BATCH:-256}" --lr "${UNET_LR:-5e-4}" \
  --ema "${UNET_EMA:-0.9995}" || exit 1
pack || exit 1
stage classifier --minutes "$CLS_MIN" --batch "${CLS_BATCH:-256}" && pack
[ -n "$gpu_check_pid" ] && wait "$gpu_check_pid"
echo "gpu_train: done in $(($(date +%s) - t0)) s"
