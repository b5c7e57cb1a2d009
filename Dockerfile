# Block-cached text-to-image service: a small image on the official Deno base.
#   docker build -t blockcache .
#   docker run -p 8000:8000 blockcache
# GPU variant (Deno's WebGPU needs a Vulkan driver visible to the process): build with
#   --build-arg VARIANT=gpu and run with --gpus all (NVIDIA Container Toolkit); see README "GPU host".
ARG DENO_VERSION=2.9.6
FROM denoland/deno:debian-${DENO_VERSION}

ARG VARIANT=cpu
# gpu: the Vulkan loader; the NVIDIA ICD json and driver come from the host via the toolkit when
# NVIDIA_DRIVER_CAPABILITIES includes "graphics".
RUN if [ "$VARIANT" = "gpu" ]; then \
      apt-get update && apt-get install -y --no-install-recommends libvulkan1 && \
      rm -rf /var/lib/apt/lists/*; \
    fi
ENV NVIDIA_DRIVER_CAPABILITIES=compute,graphics,utility \
    NVIDIA_VISIBLE_DEVICES=all \
    PORT=8000 \
    BACKEND=auto \
    DENO_NO_UPDATE_CHECK=1

WORKDIR /app
COPY deno.json deno.lock ./
COPY main.ts thumbnails.json ./
COPY lib/ lib/
COPY models/ models/
COPY schedules/ schedules/
COPY web/ web/
# npm packages (onnxruntime-web's wasm files among them) are fetched at build time, never at run time
RUN deno install && deno task build && \
    mkdir -p /app/thumbnails && chown -R deno:deno /app/thumbnails /app/node_modules

USER deno
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["deno", "eval", "const r = await fetch('http://127.0.0.1:' + (Deno.env.get('PORT') ?? '8000') + '/healthz'); Deno.exit(r.ok ? 0 : 1)"]
CMD ["deno", "task", "start"]
