#!/usr/bin/env bash
# Trains the whole default model on a GPU machine in one call of the device tool, inside a fixed
# time budget, and leaves the weights in one portable file. Here, first:
#   /usr/bin/python3 models/emoji-ldm/recipe/carry_data.py pack /work/data/emoji.npz \
#       /work/data/vocab.json .train                       # the dataset, small enough to travel
#   bash bench/gpu_pack.sh                                   # optional: deno etc. for gpu_check.sh
# Device tool: `bash models/emoji-ldm/recipe/gpu_train.sh`, carry [".train", ".gpu"], then here:
#   cp <files_at>/weights.npz /work/data/run/ && /usr/bin/python3 train.py unpack && bash ship.sh
#
# Stages: autoencoder (AE_MIN), decoder fine-tune (DEC_MIN), UNet + text encoder (whatever is
# left of BUDGET_S), classifier (CLS_MIN); the weights are packed after the UNet and again at the
# end, so a call cut short still returns a usable UNet. With .gpu/ carried, bench/gpu_check.sh
# runs beside the training (it shares the GPU: its figures say so).
set -uo pipefail
cd "$(dirname "$0")/../../.."
recipe=models/emoji-ldm/recipe
out="${OUT:-/tmp/gpu_train_out}"
mkdir -p "$out"
work=/tmp/emoji-run data=/tmp/emoji-data
py="${PYTHON:-python3}"
t0=$(date +%s)
BUDGET_S="${BUDGET_S:-500}" AE_MIN="${AE_MIN:-1.5}" DEC_MIN="${DEC_MIN:-0.7}" CLS_MIN="${CLS_MIN:-0.4}"
export PYTHONUNBUFFERED=1

exec > >(tee "$out/train.out") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$py" "$recipe/carry_data.py" unpack .train "$data" || exit 1

gpu_check_pid=""
if [ -d .gpu ] && [ "${GPU_CHECK:-1}" = 1 ]; then
  (IMAGES="${IMAGES:-3}" SPLIT_REPS="${SPLIT_REPS:-5}" OUT=/tmp/gpu_check_out \
    timeout "${GPU_CHECK_S:-330}" bash bench/gpu_check.sh > "$out/gpu_check.log" 2>&1
    tar -C /tmp/gpu_check_out -cf "$out/gpu_check.tar" .) &
  gpu_check_pid=$!
fi

stage() { "$py" "$recipe/train.py" "$@" --data "$data" --work "$work" --threads 4; }
pack() { stage pack && cp "$work/weights.npz" "$out/weights.npz" && cp "$work/train.log" "$out/"; }

stage ae --minutes "$AE_MIN" --batch 128 || exit 1
stage decoder --minutes "$DEC_MIN" --batch 128 || exit 1
unet_min=$(awk -v left=$((t0 + BUDGET_S - 45 - $(date +%s))) 'BEGIN { printf "%.2f", left / 60 }')
echo "unet: $unet_min minutes"
stage unet --minutes "$unet_min" --batch 256 --lr 5e-4 --ema 0.9995 || exit 1
pack || exit 1
stage classifier --minutes "$CLS_MIN" --batch 256 && pack
[ -n "$gpu_check_pid" ] && wait "$gpu_check_pid"
echo "gpu_train: done in $(($(date +%s) - t0)) s"
