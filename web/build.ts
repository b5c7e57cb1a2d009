/**
 * Builds the playground: bundles web/src/playground.ts with esbuild (browser ESM, minified) and
 * copies index.html and style.css beside it into web/dist/. Each file is written to a temporary
 * name and renamed, so a running server never serves half a file.
 *
 *   deno task build [--out DIR]     (`--help` prints {@link USAGE})
 *
 * The browser code has no npm imports, so esbuild resolves it alone (no import-map plugin).
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { noPositionals, parseFlags, UsageError, usageMessage } from "../lib/cli/flags.ts";
import * as esbuild from "esbuild";

const WEB_DIR = new URL(".", import.meta.url);

/** Files the build writes, in the order they are written (index.html last). */
export const PLAYGROUND_FILES = ["playground.js", "style.css", "index.html"] as const;

/** Options of {@link buildPlayground}. */
export interface BuildOptions {
  /** Output folder (default web/dist beside this file). */
  outDir?: string;
  /** Minify the bundle (default true). */
  minify?: boolean;
}

/** What a build wrote. */
export interface BuildResult {
  outDir: string;
  /** File name → size in bytes. */
  files: Record<string, number>;
  ms: number;
}

/** Bundles and copies the playground into `outDir`; throws with esbuild's message on errors. */
export async function buildPlayground(opts: BuildOptions = {}): Promise<BuildResult> {
  const t0 = performance.now();
  const outDir = opts.outDir ?? new URL("dist", WEB_DIR).pathname;
  let js: Uint8Array;
  try {
    const r = await esbuild.build({
      entryPoints: [new URL("src/playground.ts", WEB_DIR).pathname],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: ["es2022", "chrome110", "firefox115", "safari16"],
      minify: opts.minify ?? true,
      sourcemap: false,
      write: false,
      logLevel: "silent",
      outfile: "playground.js",
    });
    js = r.outputFiles[0].contents;
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { file: string; line: number } }[] })
      .errors;
    if (errors?.length) {
      const lines = errors.map((x) =>
        x.location ? `${x.location.file}:${x.location.line}: ${x.text}` : x.text
      );
      throw new Error(`playground bundle failed:\n${lines.join("\n")}`);
    }
    throw e;
  } finally {
    await esbuild.stop();
  }
  await Deno.mkdir(outDir, { recursive: true });
  const files: Record<string, number> = {};
  const contents: Record<(typeof PLAYGROUND_FILES)[number], Uint8Array> = {
    "playground.js": js,
    "style.css": await Deno.readFile(new URL("style.css", WEB_DIR)),
    "index.html": await Deno.readFile(new URL("index.html", WEB_DIR)),
  };
  for (const name of PLAYGROUND_FILES) {
    await writeFileAtomic(`${outDir}/${name}`, contents[name]);
    files[name] = contents[name].byteLength;
  }
  return { outDir, files, ms: performance.now() - t0 };
}

/** The `--help` text. */
export const USAGE = `usage: deno task build [--out DIR]

Bundles the playground (web/src) with esbuild and copies its page and style beside it.

  --out DIR    where to write it [web/dist]
  -h, --help   this text`;

/** Runs `deno task build` with `args`; resolves with the exit code. */
export async function buildCommand(args: string[]): Promise<number> {
  let outDir: string | undefined;
  try {
    const { flags, positional, help } = parseFlags(args, { out: "string" });
    if (help) {
      console.log(USAGE);
      return 0;
    }
    noPositionals(positional);
    outDir = flags.out as string | undefined;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(usageMessage("build", USAGE, e));
    return 2;
  }
  try {
    const r = await buildPlayground({ outDir });
    const list = Object.entries(r.files).map(([f, n]) => `${f} ${n} B`).join(", ");
    console.log(`playground built in ${Math.round(r.ms)} ms → ${r.outDir}: ${list}`);
    return 0;
  } catch (e) {
    console.error(`build: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await buildCommand(Deno.args));
