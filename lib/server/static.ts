/**
 * The playground's static files: `GET /` (index.html), `/playground.js` and `/style.css` from the
 * folder web/build.ts writes (web/dist, gitignored). Only these fixed names are served, so no
 * request path ever reaches the file system. They are public (no bearer token): the page itself
 * asks for the token and sends it with its API calls. When the bundle has not been built the page
 * says how to build it instead of failing.
 *
 * @module
 */
import { Hono } from "hono";

/** The bundle's default folder: web/dist of this checkout (or inside a compiled binary). */
export const DEFAULT_PLAYGROUND_DIR = new URL("../../web/dist", import.meta.url).pathname;

/** Public request path → file name and content type. */
const ASSETS: Record<string, [file: string, type: string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/playground.js": ["playground.js", "text/javascript; charset=utf-8"],
  "/style.css": ["style.css", "text/css; charset=utf-8"],
};

/** Browsers ask for it unprompted; it is answered `204` (no icon), publicly. */
const FAVICON = "/favicon.ico";

/** True for the paths the playground serves (they skip bearer auth). */
export function isPlaygroundPath(path: string): boolean {
  return Object.hasOwn(ASSETS, path) || path === FAVICON;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>playground not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>The playground is not built</h1>
<p>Run <code>deno task build</code> in the checkout (<code>deno task start</code> does it for you),
then reload. The API works without it: <code>POST /v1/images/generations</code>,
<code>POST /generate</code>, <code>GET /v1/models</code>.</p>
</body></html>
`;

/**
 * Routes serving the playground from `dir` (files are read per request, so a rebuild shows up
 * without a restart). Mount with `app.route("/", playgroundRoutes(dir))`.
 */
export function playgroundRoutes(dir: string = DEFAULT_PLAYGROUND_DIR): Hono {
  const app = new Hono();
  app.get(FAVICON, (c) => c.body(null, 204, { "cache-control": "max-age=86400" }));
  for (const [path, [file, type]] of Object.entries(ASSETS)) {
    app.get(path, async (c) => {
      let body: Uint8Array<ArrayBuffer>;
      try {
        body = await Deno.readFile(`${dir}/${file}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        if (file !== "index.html") return c.notFound();
        return c.html(NOT_BUILT, 503, { "cache-control": "no-store" });
      }
      return c.body(body, 200, { "content-type": type, "cache-control": "no-cache" });
    });
  }
  return app;
}
