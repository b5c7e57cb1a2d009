/**
 * The playground's layout in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core): every input's placeholder fits its box, so none is cut off ("20 (defau").
 * The built page (`buildPlayground`) is served as it is, with `GET /v1/models` answered in the
 * service's shape so the page fills in the model's defaults.
 */
import { chromium } from "playwright-core";
import { assert } from "./_assert.ts";
import { buildPlayground } from "../web/build.ts";
import type { ModelEntry } from "../web/src/api.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
if (!haveChromium) console.warn(`web_layout_test: SKIPPED, ${CHROMIUM} is missing`);

const MODEL: ModelEntry = {
  id: "emoji-ldm",
  sizes: ["64x64"],
  backend: "wasm",
  defaults: { steps: 100, solver: "dpm", guidance_scale: 4 }, // the widest default steps
  schedules: [],
};

const TYPES: Record<string, string> = {
  js: "text/javascript",
  css: "text/css",
  html: "text/html; charset=utf-8",
};

Deno.test({
  name: "playground: every placeholder fits its input (desktop and narrow windows)",
  ignore: !haveChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dist = await Deno.makeTempDir({ prefix: "playground-dist-" });
    await buildPlayground({ outDir: dist });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/v1/models") return Response.json({ object: "list", data: [MODEL] });
      const file = path === "/" ? "index.html" : path.slice(1);
      const type = TYPES[file.split(".").pop()!];
      if (!type || file.includes("/")) return new Response("not found", { status: 404 });
      return new Response(await Deno.readFile(`${dist}/${file}`), {
        headers: { "content-type": type },
      });
    });
    const profile = await Deno.makeTempDir({ prefix: "layout-chromium-" });
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    try {
      const page = await ctx.newPage();
      for (const width of [1100, 800, 380]) {
        await page.setViewportSize({ width, height: 900 });
        await page.goto(`http://127.0.0.1:${server.addr.port}/`);
        await page.waitForFunction(`document.getElementById("steps").placeholder !== ""`);
        // (In-page code is a string: this file is type-checked without the DOM library.)
        const boxes: { id: string; text: string; need: number; room: number }[] = await page
          .evaluate(`[...document.querySelectorAll("input[placeholder], textarea[placeholder]")]
            .map((el) => {
              const cs = getComputedStyle(el);
              const ctx = document.createElement("canvas").getContext("2d");
              ctx.font = cs.font;
              // a number input keeps room for its spin buttons (about 15 px in Chromium)
              const spin = el.type === "number" ? 16 : 0;
              const room = el.clientWidth - parseFloat(cs.paddingLeft) -
                parseFloat(cs.paddingRight) - spin;
              const lines = el.tagName === "TEXTAREA" ? Number(el.rows) : 1;
              return { id: el.id, text: el.placeholder,
                need: ctx.measureText(el.placeholder).width / lines, room };
            })`);
        assert(boxes.some((b) => b.id === "steps" && b.text === "100"), JSON.stringify(boxes));
        for (const b of boxes) {
          assert(
            b.need <= b.room,
            `${width}px window: #${b.id} placeholder "${b.text}" needs ${b.need.toFixed(0)} px, ` +
              `has ${b.room.toFixed(0)}`,
          );
        }
      }
    } finally {
      await ctx.close();
      await server.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      await Deno.remove(dist, { recursive: true });
    }
  },
});
