#!/usr/bin/env bash
# What must travel to the GPU machine, into the repository root (ignored by git, named in the
# device tool's carry):
#   .train128/  emoji-128's dataset: 128-colour lossless WebP per image + labels (~28 MiB)
#   .train/     with LDM=1: the default model's 64 px dataset (~14 MB), for RETRAIN_LDM=1
#   bash models/emoji-128/recipe/pack.sh [emoji-128 data dir] [emoji-ldm data dir]
# The recipe's code travels as the working tree; the device tool carries at most 64 MiB in all
# (tree + carried paths), so this prints the total.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
data="${1:-/work/data/emoji-128}"
ldm_data="${2:-/work/data}"
carry="$repo/models/emoji-ldm/recipe/carry_data.py"
tmp="$(mktemp -d)"  # outside the tree: a half-written folder there would travel with it
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$carry" pack "$data/emoji.npz" "$data/vocab.json" "$tmp/train128" --colors 128
rm -rf "$repo/.train128" && mv "$tmp/train128" "$repo/.train128"
if [ "${LDM:-0}" = 1 ]; then
  /usr/bin/python3 "$carry" pack "$ldm_data/emoji.npz" "$ldm_data/vocab.json" "$tmp/train"
  rm -rf "$repo/.train" && mv "$tmp/train" "$repo/.train"
fi
tree=$(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cb "$repo/.train128" $([ -d "$repo/.train" ] && [ "${LDM:-0}" = 1 ] && echo "$repo/.train") | tail -1 | cut -f1)
echo "working tree $((tree / 1048576)) MiB + carried $((carried / 1048576)) MiB = $(((tree + carried) / 1048576)) MiB (limit 64)"
