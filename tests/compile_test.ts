/**
 * The single executable (tools/compile.ts, `deno task compile`):
 * - what goes into it: `deno compile` with the start task's permissions, the model, schedules and
 *   playground included, and only the npm files the server loads (checked from its report);
 * - that it runs: started from another directory on a free port, it answers /healthz, serves the
 *   playground, and POST /generate gives a PNG of the model's size.
 *
 * `deno compile` needs Deno's runtime binary (`denort`), which it downloads once into DENO_DIR.
 * Where it cannot (no network, nothing cached, DENORT_BIN unset), the first test still checks the
 * embedding, with this `deno` standing in for the runtime, and the second is skipped saying so.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  allowFlags,
  compileBinary,
  compileExcludes,
  explainCompileFailure,
  type ModuleGraphInfo,
  runtimePackages,
  startCommand,
} from "../tools/compile.ts";
import { buildPlayground } from "../web/build.ts";
import { pngSize } from "./support/http.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const dec = new TextDecoder();

/** Whether `deno compile` can get a real runtime here, and why not when it cannot. */
async function runtimeStatus(): Promise<{ ok: true } | { ok: false; why: string }> {
  const bin = Deno.env.get("DENORT_BIN");
  if (bin) return { ok: true };
  const info = JSON.parse(
    dec.decode(
      (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
    ),
  ) as { denoDir?: string };
  const zip = `${info.denoDir}/dl/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
  if (await Deno.stat(zip).then(() => true, () => false)) return { ok: true };
  // Nothing cached: one tiny compile tries the download (and caches the runtime when it works).
  const dir = await Deno.makeTempDir({ prefix: "compile-probe-" });
  try {
    await Deno.writeTextFile(`${dir}/a.ts`, "console.log(1);\n");
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "--quiet", "--output", `${dir}/a`, `${dir}/a.ts`],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (r.success) return { ok: true };
    // "Caused by:" lists the reasons; the one naming the URL says what failed.
    // deno-lint-ignore no-control-regex -- strips terminal colour codes
    const lines = dec.decode(r.stderr).replace(/\x1b\[[0-9;]*m/g, "").split("\n");
    const msg = lines.find((l) => l.includes("denort")) ?? lines.find((l) => l.trim());
    return {
      ok: false,
      why: `deno compile cannot get its runtime: ${msg?.trim().replace(/^\d+: /, "")}`,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const runtime = await runtimeStatus();
if (!runtime.ok) {
  console.warn(
    `compile_test: the binary is built with this deno as a stand-in runtime (embedding checked) ` +
      `and not run. ${runtime.why}. Set DENORT_BIN or cache denort-${Deno.build.target}.zip.`,
  );
}

Deno.test("compile: permissions come from the start task; build tools are left out", async () => {
  const start = startCommand(await Deno.readTextFile(`${ROOT}/deno.json`));
  const flags = allowFlags(start);
  assert(flags.length >= 4, flags.join(" "));
  assert(!flags.some((f) => f === "--allow-all" || f === "--allow-read"), "narrow flags only");
  assert(flags.some((f) => f.startsWith("--allow-read=") && f.includes("./web/dist")));
  const info: ModuleGraphInfo = {
    modules: [{ kind: "npm", npmPackage: "a@1" }, { kind: "esm" }],
    npmPackages: {
      "a@1": { name: "a", dependencies: ["b@2"] },
      "b@2": { name: "b", dependencies: ["a@1"] },
      "tool@3": { name: "tool", dependencies: ["b@2"] },
    },
  };
  assertEquals([...runtimePackages(info)].sort(), ["a@1", "b@2"]);
  const cmd = new Deno.Command(Deno.execPath(), { args: ["info", "--json", "main.ts"], cwd: ROOT });
  const graph = JSON.parse(dec.decode((await cmd.output()).stdout)) as ModuleGraphInfo;
  const excluded = await compileExcludes(graph);
  const has = (end: string) => excluded.some((p) => p.endsWith(end));
  assert(has("/playwright-core@1.65.1") && has("/esbuild@0.28.2"), "test and build tools left out");
  assert(has("/node_modules/.bin"), "links to build tools left out");
  assert(has("/ort-wasm-simd-threaded.jsep.wasm"), "unused ORT builds left out");
  for (const kept of ["ort-wasm-simd-threaded.asyncify.wasm", "ort.webgpu.bundle.min.mjs"]) {
    assert(!has(`/${kept}`), `${kept} is kept (the WebGPU build)`);
  }
  for (const kept of ["ort-wasm-simd-threaded.wasm", "ort.wasm.bundle.min.mjs", "/hono@4.13.19"]) {
    assert(!has(kept.startsWith("/") ? kept : `/${kept}`), `${kept} is kept`);
  }
});

/** What `deno compile` printed here when it could not download denort (Deno 2.9.6, no network). */
const OFFLINE_REPORT = `Compile main.ts to dist/blockcache
Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip
error: Writing deno compile executable to temporary file 'dist/blockcache.tmp-dd56dc9b7e6efcfb'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known
    2: client error (Connect)

Stack backtrace:
   0: <unknown>
`;

Deno.test("compile: without Deno's runtime binary, the error says what to do (DENORT_BIN)", async () => {
  const msg = explainCompileFailure(OFFLINE_REPORT);
  assert(msg.startsWith("deno compile failed: it needs Deno's runtime binary (denort)"), msg);
  assert(msg.includes("DENORT_BIN=/path/to/denort deno task compile"), msg);
  assert(msg.includes("denort-x86_64-unknown-linux-gnu.zip from Deno's v"), msg);
  assert(msg.includes("dns error") && !msg.includes("Stack backtrace"), msg);
  assertEquals(
    explainCompileFailure("error: Module not found\n"),
    "deno compile failed:\nerror: Module not found",
  );
  if (runtime.ok) return; // the download works or denort is cached here: nothing more to see
  await buildPlayground();
  const dir = await Deno.makeTempDir({ prefix: "blockcache-offline-" });
  try {
    const e = await compileBinary({ output: `${dir}/b` }).then(() => undefined, (e) => e);
    assert(e instanceof Error && e.message.includes("DENORT_BIN=/path/to/denort"), String(e));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "compile: the binary embeds model, schedules, playground, ORT's wasm; it serves a PNG",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await buildPlayground();
    const dir = await Deno.makeTempDir({ prefix: "blockcache-bin-" });
    const output = `${dir}/blockcache`;
    try {
      const built = await compileBinary({
        output,
        env: runtime.ok ? {} : { DENORT_BIN: Deno.execPath() },
      });
      const r = built.report;
      for (
        const part of ["models/", "schedules/", "web/dist/", "main.ts", "exec/"]
      ) {
        assert(r.includes(part), `report lists ${part}:\n${r}`);
      }
      assert(r.includes("ort-wasm-simd-threaded.asyncify.wasm"), "ORT's WebGPU wasm is inside");
      assert(!r.includes("playwright-core@"), "playwright is not inside");
      const mb = Number(/Files: ([\d.]+)MB/.exec(r)?.[1]);
      assert(mb > 20 && mb < 120, `embedded files ${mb} MB (node_modules trimmed)`);
      console.log(`compile took ${(built.ms / 1000).toFixed(1)} s, embedded ${mb} MB`);

      await t.step({
        name: "the binary starts from another directory and serves a PNG",
        ignore: !runtime.ok,
        fn: () => runBinary(output, dir),
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function runBinary(binary: string, cwd: string): Promise<void> {
  const port = freePort();
  const t0 = performance.now();
  const child = new Deno.Command(binary, {
    cwd,
    env: { PORT: String(port), HOST: "127.0.0.1", THUMBNAILS_FILE: "none", BACKEND: "wasm" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: string[] = [];
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) logs.push(chunk);
  };
  const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const base = `http://127.0.0.1:${port}`;
  try {
    let healthy = false;
    for (let i = 0; i < 240 && !healthy; i++) {
      healthy = await fetch(`${base}/healthz`).then(async (r) => {
        await r.body?.cancel();
        return r.ok;
      }, () => false);
      if (!healthy) await new Promise((r) => setTimeout(r, 500));
    }
    assert(healthy, `the binary never became healthy:\n${logs.join("")}`);
    console.log(`binary healthy after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const page = await fetch(`${base}/`);
    assertEquals(page.status, 200);
    assert((await page.text()).includes("playground.js"));
    const models = await (await fetch(`${base}/v1/models`)).json();
    const model = models.data[0];
    const res = await fetch(`${base}/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a red apple", steps: 3, seed: 1, cache: "none" }),
    });
    assertEquals(res.status, 200, logs.join(""));
    const size = pngSize(new Uint8Array(await res.arrayBuffer()));
    assertEquals(`${size.width}x${size.height}`, model.sizes[0]);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await reading;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
