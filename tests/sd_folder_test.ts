/**
 * Bring your own Stable Diffusion, end to end through the library and the CLI, as the README's
 * walk-through does it, for each timestep contract real exports use: the SD-shaped fixture in
 * optimum's layout → `deno task split` → `deno task calibrate` (tiny) → images (the library at
 * the native and another size, with the calibrated schedule, SD-Turbo style at 1 step without
 * guidance; `deno task generate`) → valid PNGs. And a broken folder beside a good one: the good
 * one loads, the broken one is reported by name and reason (lib/pipeline/service.ts
 * loadPipelines). The HTTP layer over these is tested with the service.
 */
import { assert, assertEquals } from "./_assert.ts";
import { main as splitMain } from "../lib/cli/split.ts";
import { calibrateCommand } from "../lib/cli/calibrate.ts";
import { generateCommand } from "../lib/cli/generate.ts";
import { decodePng } from "../lib/image/png.ts";
import { Pipeline } from "../lib/pipeline/pipeline.ts";
import { LatencyModel } from "../lib/pipeline/latency.ts";
import { loadPipelines, modelLayout, PipelineGenerator } from "../lib/pipeline/service.ts";
import type { GenerateRequest, GenerateResult, PlanSpec } from "../lib/pipeline/types.ts";
import { materializeSdFolder, TIMESTEP_FORMS } from "./support/sd_fixture.ts";
import { pngSize } from "./support/http.ts";
import { quiet } from "./support/console.ts";

const TMP = await Deno.makeTempDir({ prefix: "sd-folder-test-" });

function request(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: "a photo of an astronaut riding a horse on the moon",
    negativePrompt: "",
    seed: 3,
    steps: 4,
    guidanceScale: 7.5,
    solver: "dpm",
    cache: "none",
    ...over,
  };
}

/** A PNG of the reported size whose pixels vary (random weights still draw something). */
function checkPng(r: GenerateResult, width: number, height: number): void {
  assertEquals(pngSize(r.png), { width, height });
  const img = decodePng(r.png);
  let min = 255, max = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    min = Math.min(min, img.data[i]);
    max = Math.max(max, img.data[i]);
  }
  assert(max > min, "a flat image");
}

for (const { form, exporter } of TIMESTEP_FORMS) {
  Deno.test(`${exporter}: split → calibrate → images → PNG`, async () => {
    const dir = `${TMP}/sd-${form}`;
    await materializeSdFolder(dir, {
      timestep: form,
      inputIds: form === "int64_steps" ? "int64" : "int32",
    });
    // 1. split, as the README does it
    const split = await quiet(() =>
      splitMain([`${dir}/unet/model.onnx`, "--out", `${dir}/unet-split`, "--quantize", "fp16"])
    );
    assertEquals(split, 0);
    await Deno.rename(`${dir}/unet`, `${dir}/unet-monolithic`);
    await Deno.rename(`${dir}/unet-split`, `${dir}/unet`);
    assert(
      (await Deno.stat(`${dir}/unet/config.json`)).isFile,
      "the export's config rides along",
    );

    // 2. calibrate (tiny)
    const schedules = `${TMP}/schedules-${form}`;
    await Deno.writeTextFile(`${TMP}/prompts.txt`, "a red apple\na cat wearing a hat\n");
    const calibrated = await quiet(() =>
      calibrateCommand([
        ...["--model", dir, "--solver", "dpm", "--steps", "4", "--deltas", "0.5"],
        ...["--uniform", "2", "--seeds", "1", "--prompts", `${TMP}/prompts.txt`],
        ...["--out", schedules, "--backend", "wasm"],
      ])
    );
    assertEquals(calibrated, 0);
    const files = [...Deno.readDirSync(schedules)].map((e) => e.name);
    assert(files.includes("dpm-4-uniform-2.json"), files.join());

    // 3. images through the library
    const p = await Pipeline.load(dir, { backend: "wasm", log: () => {}, schedulesDir: schedules });
    try {
      assertEquals(p.model.name, `sd-${form}`);
      const plain = await p.generate(request());
      checkPng(plain, 64, 64);
      const cached = await p.generate(request({ cache: "uniform-2" }));
      checkPng(cached, 64, 64);
      assertEquals([cached.schedule, cached.skippedFraction], ["uniform-2", 0.5]);
      const wide = await p.generate(request({ width: 128, height: 64, solver: "euler" }));
      checkPng(wide, 128, 64);
      // SD-Turbo style: one step, no guidance (diffusers' guidance_scale 0): the prompt alone
      const turbo = await p.generate(request({ steps: 1, guidanceScale: 0, solver: "euler" }));
      checkPng(turbo, 64, 64);
      assertEquals(turbo.schedule, null);
      // latencies are kept per size, so a planner can predict each size apart
      const name = p.model.name;
      const latency = new LatencyModel({ [name]: modelLayout(p) });
      for (const r of [plain, cached, wide, turbo]) latency.observe(name, r);
      const plan: PlanSpec = { steps: 4, solver: "dpm", schedule: null, guided: true };
      for (
        const s of [
          { ...plan, width: 64, height: 64 },
          { ...plan, width: 128, height: 64 },
          { ...plan, width: 64, height: 64, guided: false },
        ]
      ) assert(Number.isFinite(latency.predict(name, s)), JSON.stringify(s));
      // each size and batch is kept apart: a model that never ran 128x64 or batch 1 estimates them
      // from the 64x64 guided runs, and the measured figures replace those estimates
      const guidedOnly = new LatencyModel({ [name]: modelLayout(p) });
      for (const r of [plain, cached]) guidedOnly.observe(name, r);
      const native = { ...plan, width: 64, height: 64 };
      assertEquals(latency.predict(name, native), guidedOnly.predict(name, native), "undisturbed");
      for (const s of [{ ...plan, width: 128, height: 64 }, { ...plan, guided: false }]) {
        assert(
          latency.predict(name, s) !== guidedOnly.predict(name, s),
          `${JSON.stringify(s)}: measured apart`,
        );
      }
      const g = new PipelineGenerator([p]);
      const info = g.models()[0];
      assertEquals([info.width, info.height, info.minCacheSteps], [64, 64, 2]);
      assertEquals(info.sizes, {
        native: { width: 64, height: 64 },
        dynamic: true,
        multipleOf: 32,
        min: 32,
        max: 128,
      });
      assertEquals(info.scheduler, { className: "PNDMScheduler", solver: "dpm", exact: false });
      assert(info.schedules.every((s) => s.steps >= (info.minCacheSteps ?? 2)));
    } finally {
      await p.release();
    }

    // 4. deno task generate
    const png = `${TMP}/${form}.png`;
    const generated = await quiet(() =>
      generateCommand([
        ...["--model", dir, "--prompt", "a bowl of fruit", "--out", png],
        ...["--backend", "wasm", "--cache", `${schedules}/dpm-4-uniform-2.json`, "--steps", "4"],
      ])
    );
    assertEquals(generated, 0);
    assertEquals(pngSize(await Deno.readFile(png)), { width: 64, height: 64 });
  });
}

Deno.test("a broken folder beside a good one: the good one loads, the broken one is reported", async () => {
  const models = `${TMP}/models`;
  await materializeSdFolder(`${models}/good`);
  await quiet(() =>
    splitMain([`${models}/good/unet/model.onnx`, "--out", `${models}/good/unet-split`])
  );
  await Deno.rename(`${models}/good/unet`, `${TMP}/good-unet-monolithic`);
  await Deno.rename(`${models}/good/unet-split`, `${models}/good/unet`);
  // a copy whose split.json declares a timestep rank the pipeline cannot feed
  await new Deno.Command("cp", { args: ["-r", `${models}/good`, `${models}/bad-timestep`] })
    .output();
  const splitJson = `${models}/bad-timestep/unet/split.json`;
  const manifest = JSON.parse(await Deno.readTextFile(splitJson));
  manifest.inputs.find((i: { name: string }) => i.name === "timestep").shape = [2, 2];
  await Deno.writeTextFile(splitJson, JSON.stringify(manifest));
  // and one whose VAE decoder file is cut short
  await new Deno.Command("cp", { args: ["-r", `${models}/good`, `${models}/corrupt-vae`] })
    .output();
  const vae = `${models}/corrupt-vae/vae_decoder/model.onnx`;
  await Deno.writeFile(vae, (await Deno.readFile(vae)).subarray(0, 5000));

  const lines: string[] = [];
  const { loaded, failed } = await loadPipelines(models, "wasm", (l) => lines.push(l), TMP);
  try {
    assertEquals(loaded.map((p) => p.model.name), ["good"]);
    assertEquals(failed.map((f) => f.name), ["bad-timestep", "corrupt-vae"]);
    assertEquals(failed.map((f) => f.dir), [`${models}/bad-timestep`, `${models}/corrupt-vae`]);
    assert(failed[0].reason.includes("timestep is declared float32 [2, 2]"), failed[0].reason);
    assert(
      failed[1].reason.includes("vae_decoder/model.onnx: not an ONNX model"),
      failed[1].reason,
    );
    assert(lines.some((l) => l.includes("model corrupt-vae not loaded")), lines.join("\n"));
    checkPng(await loaded[0].generate(request({ steps: 2 })), 64, 64);
  } finally {
    for (const p of loaded) await p.release();
  }
});

Deno.test("clean up", async () => {
  await Deno.remove(TMP, { recursive: true });
});
