#!/usr/bin/env bash
# The whole path end to end on the CPU in minutes, with the real config and a tiny slice of the
# data, everything outside the repository (TOY, default /tmp/emoji-128-toy):
#   data slice -> travel format and back -> a few steps of every training stage -> weights.npz
#   (what the GPU machine returns) -> unpack in a fresh run -> export -> deno task split (int8)
#   -> manifest (ship.sh) -> deno task generate (one PNG) -> deno task calibrate (a tiny schedule)
#   bash models/emoji-128/recipe/toy.sh [data-dir]       # data: dataset.py build's folder
# The images are noise (a few steps of training); the point is that every step runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
ldm="$repo/models/emoji-ldm/recipe"
config="$here/config.json"
data="${1:-/work/data/emoji-128}"
toy="${TOY:-/tmp/emoji-128-toy}"
py=/usr/bin/python3
rm -rf "$toy" && mkdir -p "$toy"
step() { printf '\n== toy: %s ==\n' "$*"; }

step "a slice of the data, and its travel format both ways"
$py "$here/dataset.py" subset --data "$data" --out "$toy/data0" --count "${COUNT:-128}"
$py "$ldm/carry_data.py" pack "$toy/data0/emoji.npz" "$toy/data0/vocab.json" "$toy/carry" --colors 128
$py "$ldm/carry_data.py" unpack "$toy/carry" "$toy/data"

step "every training stage, a few steps each (CPU, 2 threads)"
t=(--config "$config" --data "$toy/data" --work "$toy/run" --threads 2)
$py "$ldm/train.py" ae "${t[@]}" --max-iters "${AE_ITERS:-6}" --batch 4
$py "$ldm/train.py" decoder "${t[@]}" --max-iters 3 --batch 4
$py "$ldm/train.py" unet "${t[@]}" --max-iters "${UNET_ITERS:-20}" --batch 4
$py "$ldm/train.py" classifier "${t[@]}" --max-iters 10 --batch 16
$py "$ldm/train.py" pack "${t[@]}"

step "weights.npz, as the GPU machine returns it, unpacked into a fresh run"
mkdir -p "$toy/run2" && cp "$toy/run/weights.npz" "$toy/run2/"
$py "$ldm/train.py" unpack --config "$config" --data "$toy/data" --work "$toy/run2" --threads 2

step "export, split (int8), manifest: ship.sh into $toy/model"
MODEL=emoji-128 CONFIG="$config" DEST="$toy/model" bash "$ldm/ship.sh" "$toy/run2" "$toy/data"
(cd "$repo" && deno task manifest "$toy/model" --verify)

step "serve: deno task generate with the pipeline"
(cd "$repo" && deno task generate --model "$toy/model" --backend wasm --prompt "google red apple" \
  --steps 10 --seed 1 --out "$toy/red_apple.png")
(cd "$repo" && deno task generate --model "$toy/model" --backend wasm --prompt "red apple" \
  --steps 10 --seed 1 --out "$toy/red_apple_plain.png")

step "calibrate a tiny schedule"
printf 'google red apple\ntwitter dog face\nfluent3d rocket\nred apple\n' > "$toy/prompts.txt"
(cd "$repo" && deno task calibrate --model "$toy/model" --backend wasm --solver dpm --steps 6 \
  --prompts "$toy/prompts.txt" --seeds 1 --uniform 2 --out "$toy/schedules")
ls -R "$toy/schedules" | head -20
echo "toy: done; model in $toy/model, images $toy/red_apple*.png"
