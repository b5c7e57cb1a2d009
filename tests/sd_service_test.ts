/**
 * Bring your own Stable Diffusion, through the HTTP service as users run it: the SD-shaped fixture
 * in each of the three timestep contracts real exports use is split and calibrated (tiny), checked
 * as `main.ts` checks folders at start, served by a real worker pool, and asked over a socket for
 * PNGs at the native size, at another size the export serves, with a calibrated schedule, and at a
 * size it does not serve. A broken folder beside a good one: the service starts without it and
 * `/healthz` and `/v1/models` say which and why.
 */
import { assert, assertEquals } from "./_assert.ts";
import { main as splitMain } from "../lib/cli/split.ts";
import { calibrateCommand } from "../lib/cli/calibrate.ts";
import { WorkerPool } from "../lib/exec/pool.ts";
import { silentLogger } from "../lib/io/log.ts";
import { defaultConfig } from "../lib/server/config.ts";
import { checkModelFolders, type Service, startService } from "../main.ts";
import { materializeSdFolder, TIMESTEP_FORMS } from "./support/sd_fixture.ts";
import { b64PngSize, jsonInit } from "./support/http.ts";
import { quiet } from "./support/console.ts";

const TMP = await Deno.makeTempDir({ prefix: "sd-service-test-" });
const MODELS = `${TMP}/models`;
const SCHEDULES = `${TMP}/schedules`;

/** An SD-shaped folder `models/<name>` in `form`, split (fp32) as the README does it. */
async function sdFolder(name: string, form: (typeof TIMESTEP_FORMS)[number]["form"]) {
  const dir = `${MODELS}/${name}`;
  await materializeSdFolder(dir, {
    timestep: form,
    inputIds: form === "int64_steps" ? "int64" : "int32",
  });
  assertEquals(
    await quiet(() => splitMain([`${dir}/unet/model.onnx`, "--out", `${dir}/unet-split`])),
    0,
  );
  await Deno.rename(`${dir}/unet`, `${TMP}/${name}-unet-monolithic`);
  await Deno.rename(`${dir}/unet-split`, `${dir}/unet`);
  return dir;
}

Deno.test("every timestep contract: split → calibrate → served over HTTP → PNGs", async (t) => {
  const dirs: string[] = [];
  await Deno.writeTextFile(`${TMP}/prompts.txt`, "a red apple\na cat wearing a hat\n");
  for (const { form } of TIMESTEP_FORMS) {
    const dir = await sdFolder(`sd-${form}`, form);
    dirs.push(dir);
    assertEquals(
      await quiet(() =>
        calibrateCommand([
          ...["--model", dir, "--solver", "dpm", "--steps", "4", "--uniform", "2"],
          ...["--deltas", "0.5", "--seeds", "1", "--prompts", `${TMP}/prompts.txt`],
          ...["--out", `${SCHEDULES}/sd-${form}`, "--backend", "wasm"],
        ])
      ),
      0,
    );
  }
  const { ok, unavailable } = await checkModelFolders(dirs);
  assertEquals([ok.length, unavailable], [3, []]);
  const pool = await WorkerPool.start({
    modelDirs: ok,
    schedulesRoot: SCHEDULES,
    backend: "wasm",
    workers: 1,
    logger: silentLogger,
  });
  let svc: Service | undefined;
  try {
    svc = await startService({
      generator: pool,
      config: defaultConfig({ port: 0, host: "127.0.0.1", shutdownGraceMs: 200 }),
      logger: silentLogger,
    });
    const url = `http://127.0.0.1:${svc.addr.port}`;
    const listed = await (await fetch(`${url}/v1/models`)).json();
    assertEquals(listed.data[0].size_range, { multiple_of: 32, min: 32, max: 128 });
    assertEquals(listed.data.map((m: { id: string }) => m.id).sort(), [
      "sd-float32_batch",
      "sd-float32_scalar",
      "sd-int64_steps",
    ]);
    for (const { form, exporter } of TIMESTEP_FORMS) {
      await t.step(exporter, async () => {
        const model = `sd-${form}`;
        const ask = (body: Record<string, unknown>) =>
          fetch(
            `${url}/v1/images/generations`,
            jsonInit({ model, prompt: "a red apple", steps: 4, seed: 1, ...body }),
          );
        for (const [size, want] of [["64x64", "64x64"], ["auto", "64x64"], ["128x64", "128x64"]]) {
          const res = await ask({ size, cache: "none" });
          assertEquals(res.status, 200, size);
          const { data, plan } = await res.json();
          const [w, h] = want.split("x").map(Number);
          assertEquals(b64PngSize(data[0].b64_json), { width: w, height: h });
          assertEquals(plan.size, want);
        }
        const cached = await ask({ cache: "dpm-4-uniform-2" });
        assertEquals(cached.status, 200);
        const { plan } = await cached.json();
        assertEquals([plan.schedule, plan.skipped_fraction], ["dpm-4-uniform-2", 0.5]);
        // the export serves multiples of 32 from 32 to 128 px: 100 is not one, 256 is too large
        for (const size of ["100x100", "256x256"]) {
          const refused = await ask({ size });
          assertEquals(refused.status, 400, size);
          assertEquals((await refused.json()).error.param, "size");
        }
        const other = await ask({ size: "96x96", cache: "none" });
        assertEquals(other.status, 200);
        assertEquals(b64PngSize((await other.json()).data[0].b64_json), { width: 96, height: 96 });
      });
    }
  } finally {
    await svc?.shutdown();
    pool.close();
  }
});

Deno.test("a broken folder beside a good one: served without it, reported by name and reason", async () => {
  const good = await sdFolder("good", "float32_batch");
  await new Deno.Command("cp", { args: ["-r", good, `${MODELS}/bad-timestep`] }).output();
  const splitJson = `${MODELS}/bad-timestep/unet/split.json`;
  const manifest = JSON.parse(await Deno.readTextFile(splitJson));
  manifest.inputs.find((i: { name: string }) => i.name === "timestep").shape = [2, 2];
  await Deno.writeTextFile(splitJson, JSON.stringify(manifest));
  const { ok, unavailable } = await checkModelFolders([good, `${MODELS}/bad-timestep`]);
  assertEquals(ok, [good]);
  assertEquals(unavailable.map((u) => u.name), ["bad-timestep"]);
  assert(unavailable[0].reason.includes("timestep"), unavailable[0].reason);
  const pool = await WorkerPool.start({
    modelDirs: ok,
    schedulesRoot: SCHEDULES,
    backend: "wasm",
    workers: 1,
    logger: silentLogger,
  });
  let svc: Service | undefined;
  try {
    svc = await startService({
      generator: pool,
      config: defaultConfig({ port: 0, host: "127.0.0.1", shutdownGraceMs: 200 }),
      logger: silentLogger,
      unavailable,
    });
    const url = `http://127.0.0.1:${svc.addr.port}`;
    const health = await fetch(`${url}/healthz`);
    const h = await health.json();
    assertEquals([health.status, h.status], [200, "degraded"]);
    assertEquals(h.unavailable_models.map((u: { name: string }) => u.name), ["bad-timestep"]);
    const models = await (await fetch(`${url}/v1/models`)).json();
    assertEquals(models.data.map((m: { id: string }) => m.id), ["good"]);
    assertEquals(models.unavailable[0].id, "bad-timestep");
    assert(models.unavailable[0].reason.includes("timestep"));
    const res = await fetch(
      `${url}/generate`,
      jsonInit({ model: "good", prompt: "a red apple", steps: 2 }),
    );
    assertEquals(res.status, 200);
    await res.body?.cancel();
  } finally {
    await svc?.shutdown();
    pool.close();
  }
});

Deno.test("clean up", async () => {
  await Deno.remove(TMP, { recursive: true });
});
