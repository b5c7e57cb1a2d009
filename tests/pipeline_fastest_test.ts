/**
 * `auto` in the service: the model is loaded on each candidate backend, timed on the same short
 * generation, and only the fastest pipeline is kept. Runs the real default model on wasm and on
 * WebGPU (lavapipe on CPU-only hosts); which one wins is not asserted (that would be a timing
 * assertion), only that the choice is the measured minimum and the loser is released.
 */
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { loadFastestPipeline, PROBE_REQUEST } from "../lib/pipeline/fastest.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";
import type { Backend } from "../lib/pipeline/types.ts";
import { probeWebGpu } from "../lib/runtime/backend.ts";
import { DEFAULT_MODEL_DIR } from "./support/generator.ts";

const webgpu = await probeWebGpu();

Deno.test({
  name: "fastest: keeps the backend with the least measured time and releases the other",
  ignore: !webgpu, // no adapter on this host: install mesa-vulkan-drivers (lavapipe)
  async fn() {
    const loaded: Pipeline[] = [];
    const lines: string[] = [];
    const { pipeline, trials } = await loadFastestPipeline(DEFAULT_MODEL_DIR, ["webgpu", "wasm"], {
      log: (l) => lines.push(l),
      load: async (backend) => {
        const p = await Pipeline.load(DEFAULT_MODEL_DIR, { backend, log: () => {} });
        loaded.push(p);
        return p;
      },
    });
    try {
      assertEquals(trials.map((t) => t.backend), ["webgpu", "wasm"]);
      assert(trials.every((t) => t.ms !== undefined && t.ms > 0), JSON.stringify(trials));
      const fastest = trials.reduce((a, b) => (b.ms! < a.ms! ? b : a));
      assertEquals(pipeline.backend, fastest.backend);
      assert(
        lines.some((l) => l.includes(`backend auto for ${DEFAULT_MODEL_DIR}: ${fastest.backend}`)),
      );
      // the kept pipeline still generates; the other one's sessions are gone
      const image = await pipeline.generate({ ...PROBE_REQUEST, seed: 3 });
      assertEquals([image.width, image.backend], [64, fastest.backend]);
      const loser = loaded.find((p) => p !== pipeline)!;
      await assertRejects(() => loser.generate(PROBE_REQUEST));
    } finally {
      await pipeline.release();
    }
  },
});

Deno.test("fastest: a backend that fails is skipped, and all failing is one clear error", async () => {
  const failOn = (bad: Backend[]) => async (backend: Backend) => {
    if (bad.includes(backend)) throw new Error(`no ${backend} here`);
    return await Pipeline.load(DEFAULT_MODEL_DIR, { backend, log: () => {} });
  };
  const { pipeline, trials } = await loadFastestPipeline(DEFAULT_MODEL_DIR, ["webgpu", "wasm"], {
    log: () => {},
    load: failOn(["webgpu"]),
  });
  try {
    assertEquals(pipeline.backend, "wasm");
    assertEquals(trials[0], { backend: "webgpu", error: "no webgpu here" });
  } finally {
    await pipeline.release();
  }
  await assertRejects(
    () =>
      loadFastestPipeline(DEFAULT_MODEL_DIR, ["webgpu", "wasm"], {
        log: () => {},
        load: failOn(["webgpu", "wasm"]),
      }),
    "no backend could run",
  );
});
