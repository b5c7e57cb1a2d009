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
export DENO_WEBGPU_BACKEND="${DENO_WEBGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-gpu-check}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export DENO_NO_UPDATE_CHECK=1

section() { printf '\n== %s ==\n' "$*"; }

# ── tools: carried in .gpu/ (bench/gpu_pack.sh), else deno from PATH or npm ──────────────────
if [ -d .gpu ]; then
  if ! command -v deno >/dev/null 2>&1 && [ -s .gpu/deno.xz ]; then
    mkdir -p /tmp/gpu-check-bin
    xz -dc .gpu/deno.xz > /tmp/gpu-check-bin/deno && chmod +x /tmp/gpu-check-bin/deno
    export PATH="/tmp/gpu-check-bin:$PATH"
  fi
  if [ ! -d node_modules ] && [ -s .gpu/node_modules.tar.xz ]; then
    tar -xJf .gpu/node_modules.tar.xz
  fi
  if ! ldconfig -p | grep -q 'libvulkan.so.1' && ls .gpu/gl/*.deb >/dev/null 2>&1; then
    for f in .gpu/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
fi
if ! command -v deno >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1; then
    npm install -g deno@2.9.6 >/dev/null
  else
    echo "gpu_check: no deno here and no npm to install it; run bench/gpu_pack.sh and carry .gpu"
    exit 2
  fi
fi
[ -d node_modules ] || deno install --quiet

# The NVIDIA Vulkan ICD: the container toolkit may leave it outside the loader's search path.
if ! ls /etc/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
  done
fi

section "host"
deno --version | head -1
uname -srm
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /' || true
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true)
fi
echo "nvidia-smi: ${gpu:-none}"
echo "vulkan loader: $(ldconfig -p | grep -m1 -o 'libvulkan.so.1 .*' || echo none)"

section "WebGPU adapter"
probe='const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
if (!a) { console.log("adapter: none"); Deno.exit(3); }
const i = a.info;
console.log(`adapter: ${i.description || i.device || "unnamed"} (vendor ${i.vendor || "?"}, architecture ${i.architecture || "?"})`);
console.log(`features: ${[...a.features].sort().join(" ")}`);
console.log(`limits: maxBufferSize ${a.limits.maxBufferSize}, maxStorageBufferBindingSize ${a.limits.maxStorageBufferBindingSize}`);'
if ! deno eval "$probe"; then
  if [ -z "$gpu" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "no adapter on a machine without a GPU: installing lavapipe (mesa-vulkan-drivers)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    deno eval "$probe"
  else
    echo "gpu_check: no WebGPU adapter (is the Vulkan driver visible to this process? see README)"
    exit 3
  fi
fi

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
