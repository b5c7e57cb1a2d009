/** The playground's static routes (lib/server/static.ts) as mounted by createApp, with auth on. */
import { assert, assertEquals } from "./_assert.ts";
import { createApp } from "../lib/server/app.ts";
import { defaultConfig } from "../lib/server/config.ts";
import type { ImageGenerator } from "../lib/pipeline/types.ts";
import { isPlaygroundPath } from "../lib/server/static.ts";

const TOKEN = "static-token-0123456789";

/** The static routes never generate: a generator with one model and no images is enough. */
const noImages: ImageGenerator = {
  models: () => [{
    name: "m",
    width: 64,
    height: 64,
    backend: "wasm",
    defaults: { steps: 4, solver: "dpm", guidanceScale: 5 },
    schedules: [],
  }],
  tokenizer: () => {
    throw new Error("not used");
  },
  predictMs: () => 1,
  generate: () => Promise.reject(new Error("not used")),
};

function app(dir: string) {
  return createApp({
    generator: noImages,
    config: defaultConfig({ apiToken: TOKEN }),
    playgroundDir: dir,
  });
}

Deno.test("static: built files are served without a token, with their types", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/index.html`, "<!doctype html><title>p</title>");
    await Deno.writeTextFile(`${dir}/playground.js`, "console.log(1)");
    await Deno.writeTextFile(`${dir}/style.css`, "body{}");
    const a = app(dir);
    for (
      const [path, type, body] of [
        ["/", "text/html", "<!doctype html><title>p</title>"],
        ["/index.html", "text/html", "<!doctype html><title>p</title>"],
        ["/playground.js", "text/javascript", "console.log(1)"],
        ["/style.css", "text/css", "body{}"],
      ]
    ) {
      const r = await a.request(path);
      assertEquals(r.status, 200, path);
      assert(r.headers.get("content-type")!.startsWith(type), path);
      assertEquals(await r.text(), body);
    }
    // Browsers ask for a favicon unprompted: no 404/401 noise from the playground.
    const icon = await a.request("/favicon.ico");
    assertEquals(icon.status, 204);
    // The API itself still needs the token.
    assertEquals((await a.request("/v1/models")).status, 401);
    const ok = await a.request("/v1/models", { headers: { authorization: `Bearer ${TOKEN}` } });
    assertEquals(ok.status, 200);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("static: a missing bundle gives a page that says how to build it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = app(dir);
    const r = await a.request("/");
    assertEquals(r.status, 503);
    assert((await r.text()).includes("deno task build"));
    const js = await a.request("/playground.js");
    assertEquals(js.status, 404);
    await js.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("static: only fixed names are public; other paths and methods need the token", async () => {
  const a = app("/nonexistent");
  for (const path of ["/../deno.json", "/web/dist/index.html", "/main.ts", "/dist/blockcache"]) {
    assertEquals(isPlaygroundPath(path), false, path);
    const r = await a.request(path);
    assertEquals(r.status, 401, path);
    await r.body?.cancel();
  }
  const post = await a.request("/", { method: "POST" });
  assertEquals(post.status, 401);
  await post.body?.cancel();
});
