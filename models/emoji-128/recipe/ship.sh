#!/usr/bin/env bash
# Here, after the GPU run: from the returned weights file to the shipped folder models/emoji-128/
# (export, deno task split --quantize int8, manifest; the card and recipe kept) and its grid.
#   bash models/emoji-128/recipe/ship.sh <files_at>/emoji-128/weights.npz [data-dir]
# WORK (default <data-dir>/run) holds the rebuilt stage files; the dataset must be the one the
# weights were trained on (dataset.py build's folder). Only now does models/emoji-128/ get a
# model_index.json, which is what makes the service list it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
ldm="$repo/models/emoji-ldm/recipe"
weights="${1:?usage: ship.sh WEIGHTS.npz [data-dir]}"
data="${2:-/work/data/emoji-128}"
work="${WORK:-$data/run}"
py=/usr/bin/python3
[ -f "$weights" ] || { echo "ship.sh: $weights: no such file" >&2; exit 2; }
mkdir -p "$work"
cp "$weights" "$work/weights.npz.tmp" && mv "$work/weights.npz.tmp" "$work/weights.npz"
$py "$ldm/train.py" unpack --config "$here/config.json" --data "$data" --work "$work" --threads 2
MODEL=emoji-128 CONFIG="$here/config.json" bash "$ldm/ship.sh" "$work" "$data"
# the grid: real | generated per style, and the plain name (trained and held-out names)
grid=(--config "$here/config.json" --names "$here/grid_names.txt" --data "$data" --plain
  --styles google,twitter,fluent3d,openmoji)
tmp="$(mktemp -d)"
(cd "$ldm" && $py grid.py "${grid[@]}" --jsonl "$tmp/grid.jsonl")
(cd "$repo" && deno task generate --model models/emoji-128 --batch "$tmp/grid.jsonl" --out-dir "$tmp/grid")
(cd "$ldm" && $py grid.py "${grid[@]}" --generated "$tmp/grid" --out "$repo/models/emoji-128/grid.png")
(cd "$repo" && deno task manifest models/emoji-128)
rm -rf "$tmp"
