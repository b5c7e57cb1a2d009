#!/usr/bin/env bash
# The GPU engine (issue #13) measured on a GPU host, in one run of well under 10 minutes on an H200:
#   1. the host, its GPU and the WebGPU adapter Deno gets (bench/gpu_env.sh);
#   2. `deno task bench gpu --backend webgpu`: every engine variant (before/static/float32/…/
#      captured) interleaved: ms and WebGPU API calls per UNet evaluation of the shipped model, ms
#      per image uncached and with the ~60%-skipping DPM-20 schedule;
#   3. PyTorch on the same GPU (bench/gpu_torch.py): the recipe's own UNet at the shipped size,
#      random weights, eager and CUDA graphs, uncached and cached, float32 and float16 (skipped,
#      saying so, where python3 has no torch);
#   4. `deno task bench gpu --backend wasm`, this host's CPU, with optimized node counts;
#   5. bench/split.ts on WebGPU: what segment boundaries cost with capture (15 segments vs 3 vs
#      one monolithic session, the tiny test UNet);
#   6. bench/gpu_summary.ts: the per-evaluation table of all of it (Markdown, README-ready).
# The steps run in that order (most wanted first), each with its own time limit, all within BUDGET
# seconds; a failed or skipped step does not stop the others, and the summary always runs.
#
#   bash bench/gpu_pack.sh        # once, on the development machine: fills .gpu/ (~40 MB)
#   device tool: command "bash bench/gpu_engine.sh", carry [".gpu"], timeout_s 590
#                (expected ~5-6 minutes on an H200; BUDGET caps it at 9)
#   results: $OUT (device tool) or bench/results/gpu_engine/ (here): gpu_webgpu.json,
#   gpu_wasm.json, gpu_torch_float32.json, gpu_torch_float16.json, gpu_engine_summary.md,
#   gpu_engine.log
#
# Environment: ROUNDS (3), EVALS (20), IMAGES (1, per plan per round), BUDGET (seconds for all
# steps, 540), VARIANTS (comma list for the WebGPU run; default all), PYTHON (a python3 with
# torch; default the first of python3, /usr/bin/python3 that imports it), QUICK=1 (a check of the
# script itself: 1 round, 2 evaluations, no images, variants before,captured; minutes on lavapipe).
set -uo pipefail
cd "$(dirname "$0")/.."

out_dir="${OUT:-bench/results/gpu_engine}"
mkdir -p "$out_dir"
exec > >(tee "$out_dir/gpu_engine.log") 2>&1
start_all=$(date +%s)

ROUNDS="${ROUNDS:-3}"
EVALS="${EVALS:-20}"
IMAGES="${IMAGES:-1}"
BUDGET="${BUDGET:-540}"
VARIANTS="${VARIANTS:-}"
TORCH_EVALS=100
NODES=false # the node counts do not depend on the adapter; `deno task bench gpu` on lavapipe has them
if [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=1 EVALS=2 IMAGES=0 VARIANTS="${VARIANTS:-before,captured}" TORCH_EVALS=5
fi

# shellcheck source=bench/gpu_env.sh
source bench/gpu_env.sh
deadline=$((start_all + BUDGET))

step() { # step LIMIT TITLE COMMAND…: runs within min(LIMIT, what is left of BUDGET); never fatal
  local limit="$1" title="$2"
  shift 2
  section "$title"
  local left=$((deadline - $(date +%s) - 15))
  if [ "$left" -lt 5 ]; then
    echo "(skipped: the time budget of ${BUDGET} s is spent)"
    return
  fi
  [ "$left" -lt "$limit" ] && limit="$left"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@"
  rc=$?
  if [ "$rc" = 0 ]; then
    echo "($title: $(($(date +%s) - t0)) s)"
  else
    echo "($title: FAILED or timed out after $(($(date +%s) - t0)) s, exit $rc)"
  fi
}

variants=()
[ -n "$VARIANTS" ] && variants=(--variants "$VARIANTS")
step 300 "deno task bench gpu --backend webgpu" \
  deno run -A bench/main.ts gpu --backend webgpu --rounds "$ROUNDS" --evals "$EVALS" \
  --images "$IMAGES" --nodes="$NODES" "${variants[@]}" --out "$out_dir/gpu_webgpu.json"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "import torch" 2>/dev/null; then
      python="$p"
      break
    fi
  done
fi
if [ -z "$python" ]; then
  section "PyTorch"
  echo "skipped: no python3 with torch here (apt-get install python3-torch for a CPU check)"
else
  for dtype in float32 float16; do
    if [ "$dtype" = float16 ] && ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
      echo "(PyTorch float16: skipped without CUDA)"
      continue
    fi
    step 90 "PyTorch $dtype ($python)" \
      "$python" bench/gpu_torch.py --dtype "$dtype" --evals "$TORCH_EVALS" \
      --out "$out_dir/gpu_torch_$dtype.json"
  done
fi

step 150 "deno task bench gpu --backend wasm (this host's CPU, 1 thread)" \
  deno run -A bench/main.ts gpu --backend wasm --rounds "$ROUNDS" --evals "$((EVALS / 2 + 1))" \
  --images "$IMAGES" --out "$out_dir/gpu_wasm.json"

step 90 "bench/split.ts --backend webgpu: split (15 segments) vs coarse (3) vs monolithic, tiny fixture" \
  deno run -A bench/split.ts --backend webgpu --reps "$EVALS"

deadline=$((deadline + 15)) # the summary takes a second; it always runs
step 10 "summary" deno run --allow-read="$out_dir" --allow-write="$out_dir" bench/gpu_summary.ts "$out_dir"

section "done in $(($(date +%s) - start_all)) s"
ls -l "$out_dir"
