/**
 * `deno task thumbnails`: runs every job of the jobs file once (what the crons do on their ticks).
 * Before any model loads, the jobs file is checked as the service checks it at start-up (cron
 * expressions with Deno.cron's rules, output folders writable, models, sizes and prompts) and
 * every model folder against its manifest. Exit 0 when every image exists, 1 when some failed,
 * 2 on bad usage or a bad jobs file.
 *
 * @module
 */
import { noPositionals, parseFlags, UsageError, usageMessage } from "./flags.ts";
import { ConfigError, loadConfig } from "../server/config.ts";
import { jsonLogger } from "../io/log.ts";
import { checkThumbnailJobs, JobsFileError, runAllThumbnailJobs } from "../jobs/thumbnails.ts";
import { verifyModelFolder } from "../model/manifest.ts";
import { loadGenerator } from "../pipeline/service.ts";
import { modelFolders } from "../model/folder.ts";

/** The `--help` text. */
export const USAGE = `usage: deno task thumbnails [options]

Runs every job of the jobs file once, writing the missing images (see thumbnails.json).

options (default in brackets):
  --file FILE        the jobs file [$THUMBNAILS_FILE, else thumbnails.json]
  --job NAME         run only this job [all]
  --models-dir DIR   the model folders [$MODELS_DIR, else models]
  --backend NAME     auto, wasm, webgpu [$BACKEND, else auto]
  -h, --help         this text`;

/** Runs the command with `args`; resolves with the exit code. */
export async function thumbnailsCommand(args: string[]): Promise<number> {
  const log = jsonLogger();
  try {
    const { flags, positional, help } = parseFlags(args, {
      file: "string",
      job: "string",
      "models-dir": "string",
      backend: "string",
    });
    if (help) {
      console.log(USAGE);
      return 0;
    }
    noPositionals(positional);
    const env = (k: string) => {
      if (k === "MODELS_DIR" && flags["models-dir"] !== undefined) {
        return String(flags["models-dir"]);
      }
      if (k === "BACKEND" && flags.backend !== undefined) return String(flags.backend);
      if (k === "THUMBNAILS_FILE" && flags.file !== undefined) return String(flags.file);
      return Deno.env.get(k);
    };
    const config = loadConfig(env);
    const file = config.thumbnailsFile;
    if (!file) throw new UsageError("no jobs file (THUMBNAILS_FILE=none); pass --file");
    const dirs = await modelFolders(config.modelsDir);
    let { jobs, warnings } = await checkThumbnailJobs(file, dirs);
    for (const w of warnings) console.error(`thumbnails: warning: ${w}`);
    if (flags.job !== undefined) {
      jobs = jobs.filter((j) => j.name === flags.job);
      if (!jobs.length) throw new UsageError(`--job: no job named "${flags.job}" in ${file}`);
    }
    for (const dir of dirs) await verifyModelFolder(dir);
    const generator = await loadGenerator(config.modelsDir, config.backend);
    const reports = await runAllThumbnailJobs(jobs, generator, { logger: log });
    for (const r of reports) {
      console.log(
        `${r.job}: ${r.written.length} written, ${r.skipped.length} up to date, ${r.failed.length} failed`,
      );
    }
    return reports.some((r) => r.failed.length) ? 1 : 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(usageMessage("thumbnails", USAGE, e));
      return 2;
    }
    if (e instanceof ConfigError || e instanceof JobsFileError) {
      console.error(`thumbnails: ${e.message}`);
      return 2;
    }
    console.error(`thumbnails: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await thumbnailsCommand(Deno.args));
