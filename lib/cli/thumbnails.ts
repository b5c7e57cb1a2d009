/**
 * `deno task thumbnails`: runs every job of the jobs file once (what the crons do on their ticks).
 * Flags: `--file` (default $THUMBNAILS_FILE or thumbnails.json), `--job NAME` (only that job),
 * `--models-dir`, `--backend`. Exit 0 when every image exists, 1 when some failed, 2 on bad usage.
 *
 * @module
 */
import { parseFlags, UsageError } from "./flags.ts";
import { ConfigError, loadConfig } from "../server/config.ts";
import { jsonLogger } from "../io/log.ts";
import { JobsFileError, loadThumbnailJobs, runAllThumbnailJobs } from "../jobs/thumbnails.ts";
import { loadGenerator } from "../pipeline/service.ts";

/** Runs the command with `args`; resolves with the exit code. */
export async function thumbnailsCommand(args: string[]): Promise<number> {
  const log = jsonLogger();
  try {
    const { flags, positional } = parseFlags(args, {
      file: "string",
      job: "string",
      "models-dir": "string",
      backend: "string",
    });
    if (positional.length) throw new UsageError(`unexpected argument "${positional[0]}"`);
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
    let jobs = await loadThumbnailJobs(file);
    if (flags.job !== undefined) {
      jobs = jobs.filter((j) => j.name === flags.job);
      if (!jobs.length) throw new UsageError(`--job: no job named "${flags.job}" in ${file}`);
    }
    const generator = await loadGenerator(config.modelsDir, config.backend);
    const reports = await runAllThumbnailJobs(jobs, generator, { logger: log });
    for (const r of reports) {
      console.log(
        `${r.job}: ${r.written.length} written, ${r.skipped.length} up to date, ${r.failed.length} failed`,
      );
    }
    return reports.some((r) => r.failed.length) ? 1 : 0;
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof JobsFileError) {
      console.error(`thumbnails: ${e.message}`);
      return 2;
    }
    console.error(`thumbnails: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await thumbnailsCommand(Deno.args));
