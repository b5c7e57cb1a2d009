/**
 * The real `ImageGenerator` (lib/pipeline/service.ts): model discovery, what `models()` lists,
 * predictions from measured latencies, schedule ids, and errors. Uses the shipped default model
 * with schedules written to a temporary folder (the shipped ones change with calibration).
 */
import { assert, assertEquals } from "./_assert.ts";
import { loadGenerator, type PipelineGenerator } from "../lib/pipeline/service.ts";
import { modelFolders } from "../lib/model/folder.ts";
import type { GenerateRequest } from "../lib/pipeline/types.ts";
import { testPipeline, writeUniformSchedule } from "./support/generator.ts";

const MODELS = new URL("../models", import.meta.url).pathname;

function request(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: "apple red heart",
    negativePrompt: "",
    seed: 5,
    steps: 4,
    guidanceScale: 4,
    solver: "dpm",
    cache: "none",
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

Deno.test("modelFolders: subfolders with model_index.json, the default model first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "models-" });
  try {
    for (const m of ["zeta", "emoji-ldm", "alpha"]) {
      await Deno.mkdir(`${dir}/${m}`);
      await Deno.writeTextFile(`${dir}/${m}/model_index.json`, "{}");
    }
    await Deno.mkdir(`${dir}/not-a-model`);
    await Deno.writeTextFile(`${dir}/stray.json`, "{}");
    assertEquals(await modelFolders(dir), [
      `${dir}/emoji-ldm`,
      `${dir}/alpha`,
      `${dir}/zeta`,
    ]);
    assertEquals(await modelFolders(`${dir}/alpha/`), [`${dir}/alpha`]);
    const e = await rejection(modelFolders(`${dir}/not-a-model`));
    assert(e.message.includes("no model folders"), e.message);
    const gone = await rejection(modelFolders(`${dir}/missing`));
    assert(gone.message.includes("cannot be read"), gone.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadGenerator refuses an unknown backend before loading anything", async () => {
  const e = await rejection(loadGenerator(MODELS, "cuda", () => {}));
  assert(e.message.includes('unknown backend "cuda"'), e.message);
});

Deno.test("the generator: models, schedule ids, predictions, generation", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "schedules-" });
  let g: PipelineGenerator | undefined;
  try {
    // Two solvers ship a schedule with the same short name; one has a measured fd.
    const helper = await testPipeline("wasm");
    const dir = `${root}/${helper.model.name}`;
    await Deno.mkdir(dir);
    await writeUniformSchedule(helper, dir, "dpm", 4, 2, { fd: 1.5 });
    await writeUniformSchedule(helper, dir, "ddim", 4, 2);
    await Deno.writeTextFile(
      `${dir}/index.json`,
      JSON.stringify({ recommended: { "dpm-4": "uniform-2" } }),
    );
    g = await loadGenerator(MODELS, "wasm", () => {}, root);
    const gen = g;
    const [m] = gen.models();

    await t.step("models() lists the default model with its size, defaults and schedules", () => {
      assertEquals(m.name, "emoji-ldm");
      assertEquals([m.width, m.height, m.backend], [64, 64, "wasm"]);
      assertEquals(m.defaults, { steps: 20, solver: "dpm", guidanceScale: 4 });
      assertEquals(m.schedules, [
        { name: "ddim-4-uniform-2", solver: "ddim", steps: 4, skippedFraction: 0.5 },
        {
          name: "dpm-4-uniform-2",
          solver: "dpm",
          steps: 4,
          skippedFraction: 0.5,
          quality: { fd: 1.5 },
        },
      ]);
    });

    await t.step("predictMs is Infinity before any measurement, finite after warmUp", async () => {
      const plan = { steps: 4, solver: "dpm" as const, schedule: null, guided: true };
      assertEquals(gen.predictMs(m.name, plan), Infinity);
      await gen.warmUp();
      const none = gen.predictMs(m.name, plan);
      assert(Number.isFinite(none) && none > 0, `prediction ${none}`);
      assertEquals(gen.predictMs(m.name, { ...plan, n: 3 }), 3 * none);
      const cached = gen.predictMs(m.name, { ...plan, schedule: "dpm-4-uniform-2" });
      assert(cached > 0 && cached < none, `cached ${cached} vs uncached ${none}`);
      // an unknown schedule is predicted as uncached (an upper bound)
      assertEquals(gen.predictMs(m.name, { ...plan, schedule: "nope" }), none);
      assert(gen.predictMs(m.name, { ...plan, steps: 8 }) > none);
      // warm-up measured the unguided batch too: it is predicted cheaper than the guided one
      const unguided = gen.predictMs(m.name, { ...plan, guided: false });
      assert(unguided > 0 && unguided < none, `unguided ${unguided} vs guided ${none}`);
    });

    await t.step("schedules by id, short name and auto; results report the id", async () => {
      const byId = await gen.generate(m.name, request({ cache: "dpm-4-uniform-2" }));
      assertEquals([byId.schedule, byId.skippedFraction], ["dpm-4-uniform-2", 0.5]);
      // auto is the planner's choice without a deadline: with no frontier measured, uncached
      const auto = await gen.generate(m.name, request({ cache: "auto" }));
      assertEquals(auto.schedule, null);
      const short = await gen.generate(m.name, request({ solver: "ddim", cache: "uniform-2" }));
      assertEquals(short.schedule, "ddim-4-uniform-2");
      const autoNone = await gen.generate(m.name, request({ solver: "euler", cache: "auto" }));
      assertEquals(autoNone.schedule, null);
      // The service adds nothing to the image: same bytes as the pipeline itself.
      const direct = await helper.generate(request());
      const via = await gen.generate(m.name, request());
      assertEquals(via.png, direct.png);
    });

    await t.step("unknown model or schedule → a clear error", async () => {
      const e = await rejection(gen.generate("dall-e-3", request(), {}));
      assert(e.message.includes('unknown model "dall-e-3"') && e.message.includes("emoji-ldm"));
      assert(
        (() => {
          try {
            gen.predictMs("dall-e-3", { steps: 4, solver: "dpm", schedule: null, guided: true });
            return false;
          } catch (err) {
            return (err as Error).message.includes("unknown model");
          }
        })(),
      );
      const s = await rejection(gen.generate(m.name, request({ cache: "no-such-schedule" })));
      assert(s.message.includes("unknown schedule no-such-schedule"), s.message);
    });
  } finally {
    await g?.release();
    await Deno.remove(root, { recursive: true });
  }
});
