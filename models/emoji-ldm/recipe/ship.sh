#!/usr/bin/env bash
# Exports the trained model and lays out the shipped folder models/$MODEL/ with the project's
# own split tool (UNet block-split, int8 weights) and manifest. Run from anywhere:
#   bash models/emoji-ldm/recipe/ship.sh [work-dir] [data-dir]
# Another model: MODEL=emoji-128 CONFIG=models/emoji-128/recipe/config.json bash ship.sh WORK DATA
# (its README.md, *.png and recipe/ are kept; the rest of the folder is replaced). DEST=DIR lays
# the folder out elsewhere (a toy run's, outside models/, where the service would list it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
work="${1:-/work/data/run}"
data="${2:-/work/data}"
name="${MODEL:-emoji-ldm}"
config=()
[ -n "${CONFIG:-}" ] && config=(--config "$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")")
export_dir="$work/export"
rm -rf "$export_dir"
/usr/bin/python3 "$here/export.py" --work "$work" --data "$data" --out "$export_dir" "${config[@]}"
model="${DEST:-$repo/models/$name}"
mkdir -p "$(dirname "$model")"
stage="$(mktemp -d "$(dirname "$model")/.$name.XXXX")"
trap 'rm -rf "$stage"' ERR
cp -r "$export_dir"/{model_index.json,scheduler,tokenizer,text_encoder,vae_decoder,eval,test_vectors} "$stage/"
(cd "$repo" && deno run --allow-read --allow-write lib/cli/split.ts "$export_dir/unet/model.onnx" \
  --out "$stage/unet" --quantize int8)
# keep the card and the recipe; replace the shipped files
cp "$model/README.md" "$stage/" 2>/dev/null || true
cp "$model"/*.png "$stage/" 2>/dev/null || true
cp -r "$model/recipe" "$stage/" 2>/dev/null || true
(cd "$repo" && deno run --allow-read --allow-write lib/cli/manifest.ts "$stage")
rm -rf "$model.old"
[ -d "$model" ] && mv "$model" "$model.old"
mv "$stage" "$model" && rm -rf "$model.old"
du -sh "$model"
