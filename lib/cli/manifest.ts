/**
 * `deno task manifest MODEL_DIR [--write]`: checks a model folder against its manifest.json (the
 * default, so a damaged file is never recorded as right by accident), or with `--write` records
 * the files as they are now.
 *
 * @module
 */
import { readManifest, verifyManifest, writeManifest } from "../model/manifest.ts";
import { noPositionals, parseFlags, UsageError, usageMessage } from "./flags.ts";

/** Usage text. */
export const USAGE = `usage: deno task manifest MODEL_DIR [--write]

  Checks every file MODEL_DIR/manifest.json lists (size and sha256): exit 0 when all match,
  1 naming each file that differs. Nothing is written.

  --write     rebuild MODEL_DIR/manifest.json from the files as they are now (after an intended
              change; the files whose hash changes are listed)
  --verify    check (the default; accepted for scripts)
  -h, --help  this text`;

/** Runs the command; resolves with the exit code (0 ok, 1 files differ, 2 bad usage). */
export async function manifestCommand(
  args: string[],
  print: (line: string) => void = console.log,
  printError: (line: string) => void = console.error,
): Promise<number> {
  let dir: string, write: boolean;
  try {
    const { flags, positional, help } = parseFlags(args, { write: "boolean", verify: "boolean" });
    if (help) return (print(USAGE), 0);
    if (positional.length === 0) throw new UsageError("missing MODEL_DIR", true);
    noPositionals(positional.slice(1));
    if (flags.write && flags.verify) throw new UsageError("give --write or --verify, not both");
    dir = positional[0].replace(/(.)\/+$/, "$1");
    write = flags.write === true;
  } catch (e) {
    if (e instanceof UsageError) return (printError(usageMessage("manifest", USAGE, e)), 2);
    throw e;
  }
  try {
    if (!write) {
      if (!(await readManifest(dir))) {
        printError(`manifest: ${dir}/manifest.json not found (create it with --write)`);
        return 1;
      }
      const problems = await verifyManifest(dir);
      for (const p of problems) printError(`manifest: ${dir}: ${p}`);
      if (problems.length) {
        printError(
          `manifest: ${problems.length} file(s) differ from ${dir}/manifest.json; restore them, ` +
            "or record the change with --write",
        );
        return 1;
      }
      print(`${dir}/manifest.json: every file matches`);
      return 0;
    }
    const before = new Map(
      ((await readManifest(dir).catch(() => undefined))?.files ?? []).map((f) => [f.path, f]),
    );
    const m = await writeManifest(dir);
    for (const f of m.files) {
      const old = before.get(f.path);
      if (!old) print(`added ${f.path}`);
      else if (old.sha256 !== f.sha256) print(`changed ${f.path} (sha256 ${f.sha256})`);
    }
    for (const path of before.keys()) {
      if (!m.files.some((f) => f.path === path)) print(`removed ${path}`);
    }
    print(`${dir}/manifest.json: ${m.files.length} files`);
    return 0;
  } catch (e) {
    printError(`manifest: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await manifestCommand(Deno.args));
