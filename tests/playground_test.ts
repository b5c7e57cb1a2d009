/**
 * The playground end to end in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core): `deno task build`'s bundle served by the real service (startService on
 * 127.0.0.1, port 0, with API_TOKEN set), a user who types the token and a prompt, clicks
 * Generate, sees streamed previews, gets the final PNG at the model's size, and downloads it.
 *
 * Set PLAYGROUND_SCREENSHOT=/tmp/playground.png to keep a screenshot of the finished page.
 */
import { chromium } from "playwright-core";
import { assert, assertEquals } from "./_assert.ts";
import { startService } from "../main.ts";
import { buildPlayground } from "../web/build.ts";
import { defaultConfig } from "../lib/server/config.ts";
import { silentLogger } from "../lib/io/log.ts";
import { testGenerator } from "./support/generator.ts";
import { pngSize } from "./support/http.ts";

const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "playground-token-0123456789";

const haveChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
if (!haveChromium) {
  console.warn(
    `playground_test: SKIPPED, ${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)`,
  );
}

Deno.test({
  name: "playground: prompt → streamed previews → final image and download, in Chromium",
  ignore: !haveChromium,
  // Chromium's pipes and the service's sockets outlive single ops; both are closed in `finally`.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await buildPlayground();
    const generator = await testGenerator();
    const model = generator.models()[0];
    const svc = await startService({
      generator,
      config: defaultConfig({
        port: 0,
        host: "127.0.0.1",
        apiToken: TOKEN,
        thumbnailsFile: null,
        shutdownGraceMs: 200,
      }),
      logger: silentLogger,
    });
    const url = `http://127.0.0.1:${svc.addr.port}/`;
    const profile = await Deno.makeTempDir({ prefix: "playground-chromium-" });
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1100, height: 860 },
      acceptDownloads: true,
    });
    try {
      const page = await ctx.newPage();
      page.setDefaultTimeout(30_000);
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(e.message));

      const res = await page.goto(url);
      assertEquals(res?.status(), 200);
      await page.waitForSelector("body[data-ready=true]");
      // The page is public, the API is not: it asks for the token.
      await page.waitForFunction(
        `document.getElementById("model-line").textContent.includes("API token")`,
      );
      await page.fill("#token", TOKEN);
      await page.press("#token", "Tab");
      await page.waitForFunction(
        `document.getElementById("model-line").textContent.includes(${JSON.stringify(model.name)})`,
      );
      // The speed/quality select lists every shipped schedule of the model.
      const options = await page.$$eval(
        "#cache option",
        (os) => os.map((o) => o.getAttribute("value")),
      );
      assertEquals(options, ["auto", "none", ...model.schedules.map((s) => s.name)]);

      // Count every preview the page shows while the request streams.
      // (In-page code is passed as strings: this file is type-checked without the DOM library.)
      await page.evaluate(`(() => {
        window.previews = [];
        const img = document.getElementById("preview");
        new MutationObserver(() => window.previews.push(img.src.slice(0, 32)))
          .observe(img, { attributes: true, attributeFilter: ["src"] });
      })()`);
      await page.fill("#prompt", "a red apple");
      await page.fill("#seed", "1234");
      await page.fill("#steps", "8");
      await page.selectOption("#cache", "none");
      await page.click("#generate");

      await page.waitForSelector("#result:not([hidden])");
      await page.waitForFunction(
        `(() => { const i = document.getElementById("result"); return i.complete && i.naturalWidth > 0; })()`,
      );
      const result: { src: string; w: number; h: number } = await page.evaluate(
        `(() => { const i = document.getElementById("result"); return { src: i.src, w: i.naturalWidth, h: i.naturalHeight }; })()`,
      );
      assert(result.src.startsWith("blob:"), `final image is a blob URL, got ${result.src}`);
      assertEquals([result.w, result.h], [model.width, model.height]);

      const previews: string[] = await page.evaluate("window.previews");
      assert(previews.length >= 1, "at least one streamed preview was shown");
      assert(previews.every((p) => p.startsWith("data:image/png;base64,")), previews.join(" "));

      const status = await page.textContent("#status");
      assert(status?.startsWith("done"), `status says done, got ${JSON.stringify(status)}`);
      const plan = Object.fromEntries(
        await page.$$eval(
          "#plan tr",
          (rows) => rows.map((r) => [r.children[0].textContent, r.children[1].textContent]),
        ),
      );
      assertEquals(plan["seed"], "1234");
      assertEquals(plan["steps / solver"]?.startsWith("8 / "), true);
      assertEquals(plan["cache schedule"], "none");
      assert(plan["generation total"]?.endsWith(" ms"), JSON.stringify(plan));

      // The download link saves the same PNG.
      const href = await page.getAttribute("#download", "href");
      assertEquals(href, result.src);
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.click("#download"),
      ]);
      assert(download.suggestedFilename().endsWith("-1234.png"), download.suggestedFilename());
      const saved = await download.path();
      assertEquals(pngSize(await Deno.readFile(saved)), {
        width: model.width,
        height: model.height,
      });

      const shot = Deno.env.get("PLAYGROUND_SCREENSHOT");
      if (shot) await page.screenshot({ path: shot, fullPage: true });
      assertEquals(pageErrors, []);
    } finally {
      await ctx.close();
      await svc.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
