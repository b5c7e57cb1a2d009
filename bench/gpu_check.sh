#!/usr/bin/env bash
# GPU check: the serving path's benchmark on the WebGPU backend, and what it runs on.
#   1. names the GPU (nvidia-smi) and the WebGPU adapter Deno gets, with its features;
#   2. bench/gpu.ts: the default model on WebGPU, no cache vs each shipped schedule (median
#      ms per image, speedups), then the same on wasm (this host's CPU) for comparison;
#   3. bench/split.ts on WebGPU: the block-split UNet vs the monolithic one;
#   4. one `deno task generate --backend webgpu` from the command line, timed, PNG kept.
# On a machine without a GPU it runs the same path on lavapipe (Mesa's CPU Vulkan driver,
# installed from Debian's packages when missing there): a check of the code path, not of speed.
#
#   bash bench/gpu_check.sh                      # here; results in bench/results/gpu_check.*
#   device tool: bash bench/gpu_check.sh, carry [".gpu"] (make it with bench/gpu_pack.sh);
#                results come back from $OUT
#
# Environment: IMAGES (measured images per plan, default 5), SPLIT_REPS (default 10),
# DENO_WEBGPU_BACKEND (default vulkan: without it Deno may fall back to a slower GL adapter),
# BENCH_ARGS (when set, also runs `deno task bench $BENCH_ARGS --backend webgpu`).
set -euo pipefail
cd "$(dirname "$0")/.."

out_dir="${OUT:-bench/results}"
mkdir -p "$out_dir"
log="$out_dir/gpu_check.log"
exec > >(tee "$log") 2>&1
IMAGES="${IMAGES:-5}"
SPLIT_REPS="${SPLIT_REPS:-10}"
# shellcheck source=bench/gpu_env.sh
source bench/gpu_env.sh

section "bench/gpu.ts on webgpu (images per plan: $IMAGES)"
deno run -A bench/gpu.ts --backend webgpu --images "$IMAGES" --out "$out_dir/gpu_check_webgpu.json"

section "bench/gpu.ts on wasm, this host's CPU, for comparison"
deno run -A bench/gpu.ts --backend wasm --images "$IMAGES" --out "$out_dir/gpu_check_wasm.json"

section "bench/split.ts on webgpu (split vs monolithic UNet, $SPLIT_REPS reps)"
deno run -A bench/split.ts --backend webgpu --reps "$SPLIT_REPS"

if [ -n "${BENCH_ARGS:-}" ]; then
  section "deno task bench $BENCH_ARGS --backend webgpu"
  # shellcheck disable=SC2086
  deno task bench $BENCH_ARGS --backend webgpu
fi

section "deno task generate --backend webgpu (process start, model load and one image)"
start=$(date +%s%N)
deno task generate --backend webgpu --prompt "a red apple" --seed 7 --out "$out_dir/gpu_check.png"
echo "wall time: $(( ($(date +%s%N) - start) / 1000000 )) ms"

section "done"
echo "results: $out_dir/gpu_check_webgpu.json, $out_dir/gpu_check_wasm.json, $out_dir/gpu_check.png, $log"
