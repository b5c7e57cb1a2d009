#!/usr/bin/env bash
# Sourced by bench/gpu_check.sh and bench/gpu_engine.sh (not run on its own): makes deno,
# node_modules and a Vulkan loader available on the device machine, from the .gpu/ folder that
# bench/gpu_pack.sh fills (the device machine reaches no package registry), then describes the host
# and the WebGPU adapter Deno gets. Defines `section TITLE`; sets GPU_NAME (nvidia-smi, or empty).
# Exits 2 when deno cannot be had, 3 when there is no WebGPU adapter.

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
    echo "no deno here and no npm to install it; run bench/gpu_pack.sh and carry .gpu"
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
GPU_NAME=""
if command -v nvidia-smi >/dev/null 2>&1; then
  GPU_NAME=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true)
fi
echo "nvidia-smi: ${GPU_NAME:-none}"
echo "vulkan loader: $(ldconfig -p | grep -m1 -o 'libvulkan.so.1 .*' || echo none)"

section "WebGPU adapter"
probe='const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
if (!a) { console.log("adapter: none"); Deno.exit(3); }
const i = a.info;
console.log(`adapter: ${i.description || i.device || "unnamed"} (vendor ${i.vendor || "?"}, architecture ${i.architecture || "?"})`);
console.log(`features: ${[...a.features].sort().join(" ")}`);
console.log(`limits: maxBufferSize ${a.limits.maxBufferSize}, maxStorageBufferBindingSize ${a.limits.maxStorageBufferBindingSize}`);'
if ! deno eval "$probe"; then
  if [ -z "$GPU_NAME" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "no adapter on a machine without a GPU: installing lavapipe (mesa-vulkan-drivers)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    deno eval "$probe"
  else
    echo "no WebGPU adapter (is the Vulkan driver visible to this process? see README)"
    exit 3
  fi
fi
