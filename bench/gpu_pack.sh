#!/usr/bin/env bash
# Packs what bench/gpu_check.sh needs on a machine that reaches no package registry (the device
# machine) into .gpu/ (ignored by git; carried by the device tool):
#   .gpu/deno.xz               this machine's deno binary, xz-compressed (~30 MB)
#   .gpu/node_modules.tar.xz   node_modules without what no benchmark loads (~7 MB)
#   .gpu/gl/*.deb              the Vulkan loader and GLVND (Debian amd64), unpacked there when
#                              the machine has no libvulkan
# Then, with the device tool: run `bash bench/gpu_check.sh` with carry [".gpu"].
# Everything is rebuilt only when missing (delete .gpu/ to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .gpu/gl
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude

deno_bin=$(readlink -f "$(command -v deno)")
if [ ! -s .gpu/deno.xz ]; then
  echo "compressing $deno_bin ($(deno --version | head -1)); about 4 minutes on 2 cores"
  xz -T2 -9e -c "$deno_bin" > .gpu/deno.xz.tmp && mv .gpu/deno.xz.tmp .gpu/deno.xz
fi

if [ ! -s .gpu/node_modules.tar.xz ]; then
  [ -d node_modules ] || deno install --quiet
  # Every package folder stays (Deno checks the lockfile's packages are installed); the files no
  # benchmark loads go: source maps, onnxruntime-web's other builds and CommonJS files,
  # esbuild's native binary, imagescript's codecs, playwright's library, Node's type files.
  # (.deno.lock is a lock file other deno processes touch while tar reads.)
  tar -cf - \
    --exclude='node_modules/.deno/.deno.lock' --exclude='*.map' \
    --exclude='ort-wasm-simd-threaded.jsep.*' --exclude='ort-wasm-simd-threaded.jspi.*' \
    --exclude='ort.all*' --exclude='ort.webgl*' --exclude='ort.jspi*' --exclude='ort.node*' \
    --exclude='node_modules/.deno/onnxruntime-web@*/node_modules/onnxruntime-web/dist/*.js' \
    --exclude='node_modules/.deno/playwright-core@*/node_modules/playwright-core/lib' \
    --exclude='node_modules/.deno/@types+node@*/node_modules/@types/node/*' \
    --exclude='node_modules/.deno/@esbuild+*/node_modules/@esbuild/*/bin/esbuild' \
    --exclude='node_modules/.deno/imagescript@*/node_modules/imagescript/codecs' \
    --exclude='node_modules/.deno/imagescript@*/node_modules/imagescript/wasm' \
    node_modules | xz -T2 -9e > .gpu/node_modules.tar.xz.tmp
  mv .gpu/node_modules.tar.xz.tmp .gpu/node_modules.tar.xz
fi

if ! ls .gpu/gl/*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  # shellcheck disable=SC2086
  apt-get $o update -qq
  # shellcheck disable=SC2086
  (cd .gpu/gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libgl1 libglx0)
fi

du -sh .gpu/* | sed 's/^/  /'
echo "total $(du -sh .gpu | cut -f1) (the device tool carries at most 64 MiB with the work tree)"
