/**
 * Builds the single executable (`deno task compile` → dist/blockcache): main.ts with the default
 * model, the shipped schedules and the built playground embedded (`--include`), and the same
 * narrow `--allow-*` flags as `deno task start` (read from deno.json, so the two cannot drift).
 *
 * With a local node_modules, `deno compile` embeds every installed npm package whole (~180 MB
 * here); this script excludes what the server never loads: packages outside main.ts's module graph
 * (playwright-core, esbuild: build and test tools) and, inside onnxruntime-web and imagescript, the
 * builds and codecs the service does not import. onnxruntime-web finds its `.wasm` beside its
 * bundle through `import.meta.url`; inside the binary that URL points into the embedded file
 * system, which Deno's `fetch` reads, so the two kept `.wasm` files need no other setting.
 *
 *   deno task compile [--output PATH]
 *
 * `deno compile` needs Deno's `denort` runtime for the target: it downloads it once into
 * `$DENO_DIR/dl/release/v<version>/` (offline: put `denort-<target>.zip` there, or set DENORT_BIN
 * to an unpacked `denort`).
 *
 * @module
 */

import { noPositionals, parseFlags, UsageError, usageMessage } from "../lib/cli/flags.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Folders embedded beside the code (relative to the repository root). */
export const INCLUDES = ["models/emoji-ldm", "schedules", "web/dist"] as const;

/**
 * Modules started as workers (`new Worker(url)` is not followed by the module graph, so they are
 * embedded as extra entry points, with everything they import).
 */
export const WORKER_MODULES = ["lib/exec/worker.ts"] as const;

/** The onnxruntime-web files the service loads (lib/runtime/ort.ts imports `/webgpu`, `/wasm`). */
export const ORT_RUNTIME_FILES = [
  "package.json",
  "dist/ort.webgpu.bundle.min.mjs",
  "dist/ort-wasm-simd-threaded.asyncify.wasm",
  "dist/ort-wasm-simd-threaded.asyncify.mjs",
  "dist/ort.wasm.bundle.min.mjs",
  "dist/ort-wasm-simd-threaded.wasm",
  "dist/ort-wasm-simd-threaded.mjs",
] as const;

/** The imagescript files the service loads (only its pure-JS PNG encoder). */
export const IMAGESCRIPT_RUNTIME_FILES = ["package.json", "png"] as const;

/** The `--allow-*` flags of a task command (the binary gets exactly `deno task start`'s). */
export function allowFlags(command: string): string[] {
  return command.split(/\s+/).filter((a) => a.startsWith("--allow-"));
}

/** `deno task start`'s command from deno.json's text (a string or `{command}` task). */
export function startCommand(denoJson: string): string {
  const task = (JSON.parse(denoJson) as { tasks?: Record<string, unknown> }).tasks?.start;
  const command = typeof task === "string" ? task : (task as { command?: unknown })?.command;
  if (typeof command !== "string") throw new Error("deno.json has no tasks.start command");
  return command;
}

/** One npm package as `deno info --json` reports it. */
interface NpmPackageInfo {
  name: string;
  dependencies: string[];
  localPath?: string;
}

/** The parts of `deno info --json main.ts` used here. */
export interface ModuleGraphInfo {
  modules: { kind?: string; npmPackage?: string }[];
  npmPackages: Record<string, NpmPackageInfo>;
}

/** npm packages (`name@version`) reachable from the graph's npm imports, dependencies included. */
export function runtimePackages(info: ModuleGraphInfo): Set<string> {
  const seen = new Set<string>();
  const stack = info.modules.flatMap((m) => m.kind === "npm" && m.npmPackage ? [m.npmPackage] : []);
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(info.npmPackages[id]?.dependencies ?? []));
  }
  return seen;
}

/** Entries of `dir` not in `keep` (paths relative to `dir`, `/`-separated), as absolute paths. */
async function allBut(dir: string, keep: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (keep.includes(path)) continue;
      if (e.isDirectory && keep.some((k) => k.startsWith(`${path}/`))) await walk(path);
      else out.push(`${dir}/${path}`);
    }
  };
  await walk("");
  return out;
}

/**
 * Absolute paths `deno compile` should leave out: node_modules/.bin, the installed folder of every
 * npm package outside the runtime graph (and its top-level link), and the unused files of
 * onnxruntime-web and imagescript.
 */
export async function compileExcludes(info: ModuleGraphInfo): Promise<string[]> {
  const runtime = runtimePackages(info);
  // node_modules/.bin links to the build tools' executables (esbuild's native binary among them).
  const out: string[] = [`${ROOT}/node_modules/.bin`];
  for (const [id, pkg] of Object.entries(info.npmPackages)) {
    if (!pkg.localPath) continue;
    // localPath: <root>/node_modules/.deno/<folder>/node_modules/<name>
    const folder = pkg.localPath.slice(0, -`/node_modules/${pkg.name}`.length);
    if (!runtime.has(id)) {
      out.push(folder);
      // Links to it (top-level and hoisted) would pull the folder back in.
      for (
        const link of [
          `${ROOT}/node_modules/${pkg.name}`,
          `${ROOT}/node_modules/.deno/node_modules/${pkg.name}`,
        ]
      ) {
        if (await Deno.lstat(link).then((s) => s.isSymlink, () => false)) out.push(link);
      }
    } else if (pkg.name === "onnxruntime-web") {
      out.push(...await allBut(pkg.localPath, ORT_RUNTIME_FILES));
    } else if (pkg.name === "imagescript") {
      out.push(...await allBut(pkg.localPath, IMAGESCRIPT_RUNTIME_FILES));
    }
  }
  return out;
}

/** Options of {@link compileBinary}. */
export interface CompileOptions {
  /** Output path (default dist/blockcache). */
  output?: string;
  /** Extra environment for `deno compile` (e.g. DENORT_BIN). */
  env?: Record<string, string>;
}

/** What {@link compileBinary} did. */
export interface CompileResult {
  output: string;
  args: string[];
  /** `deno compile`'s report (embedded files and sizes), colours stripped. */
  report: string;
  ms: number;
}

async function denoJson(args: string[]): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`deno ${args.join(" ")} failed:\n${new TextDecoder().decode(r.stderr)}`);
  }
  return new TextDecoder().decode(r.stdout);
}

/** The full `deno compile` argument list. */
export async function compileArgs(output: string): Promise<string[]> {
  const perms = allowFlags(startCommand(await Deno.readTextFile(`${ROOT}/deno.json`)));
  const info = JSON.parse(await denoJson(["info", "--json", "main.ts"])) as ModuleGraphInfo;
  const excludes = await compileExcludes(info);
  return [
    "compile",
    ...perms,
    ...[...INCLUDES, ...WORKER_MODULES].flatMap((p) => ["--include", p]),
    ...excludes.flatMap((p) => ["--exclude", p]),
    "--output",
    output,
    "main.ts",
  ];
}

/** Runs `deno compile`; throws with its output when it fails or an include is missing. */
export async function compileBinary(opts: CompileOptions = {}): Promise<CompileResult> {
  const t0 = performance.now();
  for (const p of INCLUDES) {
    if (!(await Deno.stat(`${ROOT}/${p}`).then((s) => s.isDirectory, () => false))) {
      throw new Error(
        `${p}/ is missing${p === "web/dist" ? " (run deno task build)" : ""}; nothing compiled`,
      );
    }
  }
  const output = opts.output ?? `${ROOT}/dist/blockcache`;
  const args = await compileArgs(output);
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  // deno-lint-ignore no-control-regex -- strips terminal colour codes
  const report = (dec.decode(r.stdout) + dec.decode(r.stderr)).replace(/\x1b\[[0-9;]*m/g, "");
  if (!r.success) throw new Error(explainCompileFailure(report));
  return { output, args, report, ms: performance.now() - t0 };
}

/**
 * The message for a failed `deno compile`: Deno's report without its empty stack backtrace, and,
 * when Deno could not get its runtime binary (`denort`, downloaded from dl.deno.land on first
 * use), what to do on a machine without that download.
 */
export function explainCompileFailure(report: string): string {
  const text = report.replace(/\n*Stack backtrace:[\s\S]*$/, "").trimEnd();
  const url = /https:\/\/dl\.deno\.land\/\S*denort-[^\s)]+\.zip/.exec(text)?.[0];
  if (!url && !/denort|Setting up base binary/.test(text)) return `deno compile failed:\n${text}`;
  const zip = url?.split("/").pop() ?? `denort-${Deno.build.target}.zip`;
  const version = Deno.version.deno;
  return `deno compile failed: it needs Deno's runtime binary (denort) for ${Deno.build.target} ` +
    `and could not download it${
      url ? ` from ${url}` : ""
    }. Without access to dl.deno.land, either:\n` +
    `  - set DENORT_BIN to an unpacked denort ${version} binary: ` +
    `DENORT_BIN=/path/to/denort deno task compile, or\n` +
    `  - put ${zip} from Deno's v${version} release into $DENO_DIR/dl/release/v${version}/ ` +
    "(`deno info` shows DENO_DIR).\n" +
    `Deno's report:\n${text}`;
}

/** The `--help` text. */
export const USAGE = `usage: deno task compile [--output PATH]

Builds one executable with the default model, the schedules and the playground inside.

  --output PATH   where to write it [dist/blockcache]
  -h, --help      this text

Needs Deno's runtime binary (denort): downloaded on first use, or DENORT_BIN=/path/to/denort.`;

if (import.meta.main) {
  let output: string | undefined;
  try {
    const { flags, positional, help } = parseFlags(Deno.args, { output: "string" });
    if (help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    noPositionals(positional);
    output = flags.output as string | undefined;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(usageMessage("compile", USAGE, e));
    Deno.exit(2);
  }
  try {
    const r = await compileBinary({ output });
    console.log(r.report.trimEnd());
    const size = (await Deno.stat(r.output)).size / 2 ** 20;
    console.log(`compiled ${r.output} (${size.toFixed(0)} MiB) in ${(r.ms / 1000).toFixed(1)} s`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
