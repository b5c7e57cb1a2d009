# Block-cached text-to-image service on the official Deno base image.
#
#   docker build -t blockcache .                          # CPU (wasm backend)
#   docker run --rm -p 8000:8000 blockcache
#
#   docker build --target gpu -t blockcache:gpu .          # NVIDIA GPU (WebGPU over Vulkan)
#   docker run --rm --gpus all -p 8000:8000 blockcache:gpu
#
# The image runs the single executable that `deno task compile` builds (the default model, the
# shipped schedules and the playground are inside it), as the non-root user `deno`, with the
# same narrow permissions as `deno task start` baked in. Configuration is by environment
# (PORT, API_TOKEN, CORS_ORIGINS, QUEUE_MAX, WORKERS, DEFAULT_DEADLINE_MS, SHUTDOWN_GRACE_MS,
# BACKEND, THUMBNAILS_FILE, AUTO_CACHE, MODELS_DIR); see the README.
ARG DENO_VERSION=2.9.6

# ── build: npm packages from the lockfile, the playground bundle, the executable ──────────────
FROM denoland/deno:debian-${DENO_VERSION} AS build
WORKDIR /src
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY . .
# `deno compile` fetches Deno's runtime (denort) for this version on first use.
RUN deno task compile

# ── runtime: the executable, a jobs file, a writable thumbnails folder ───────────────────────
FROM denoland/deno:debian-${DENO_VERSION} AS runtime
WORKDIR /app
COPY --from=build /src/dist/blockcache /app/blockcache
COPY thumbnails.json /app/thumbnails.json
RUN mkdir -p /app/thumbnails && chown deno:deno /app/thumbnails
ENV PORT=8000 \
    HOST=0.0.0.0 \
    DENO_NO_UPDATE_CHECK=1
USER deno
EXPOSE 8000
# The base image has deno, which serves as the HTTP client (the binary's permissions stay as
# they are). The start period covers model loading and the warm-up generations.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["deno", "eval", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('PORT') ?? '8000'}/healthz`); Deno.exit(r.ok ? 0 : 1)"]
# The service handles SIGTERM itself (stops taking requests, finishes the running one).
ENTRYPOINT ["/app/blockcache"]
CMD []

# ── gpu: Deno's WebGPU needs a Vulkan driver visible to the process ──────────────────────────
# The NVIDIA Container Toolkit mounts the driver (libGLX_nvidia, the Vulkan ICD) when
# NVIDIA_DRIVER_CAPABILITIES includes "graphics"; the image brings the Vulkan loader and GLVND,
# and an ICD file in case the toolkit does not mount one. BACKEND=webgpu makes start-up fail
# with a clear message instead of silently running on the CPU when no GPU adapter is visible.
FROM runtime AS gpu
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 libglvnd0 libegl1 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/vulkan/icd.d \
 && printf '%s\n' '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3"}}' \
      > /etc/vulkan/icd.d/nvidia_icd.json
USER deno
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,graphics,utility \
    BACKEND=webgpu

# ── cpu (the default target): the wasm backend ────────────────────────────────────────────
FROM runtime AS cpu
ENV BACKEND=wasm
