/**
 * The model folder's integrity manifest (`manifest.json`): the sha256 and size of every shipped
 * file, so a replica proves before serving that it serves exactly the weights that were tested —
 * every listed file (text encoder, VAE decoder, tokenizer, configs, UNet segments), not only the
 * UNet's (which `unet/split.json` checks again at load).
 *
 * @module
 */
import { writeFileAtomic } from "../io/atomic.ts";
import { statOrUndefined } from "../io/fs.ts";
import { sha256File } from "../io/hash.ts";

/** One file of a model folder. */
export interface ManifestEntry {
  path: string;
  bytes: number;
  sha256: string;
}

/** `manifest.json` of a model folder. */
export interface Manifest {
  format: "blockcache-model-manifest/1";
  files: ManifestEntry[];
}

/** A model folder whose files differ from its manifest; `problems` name each file. */
export class ModelIntegrityError extends Error {
  override name = "ModelIntegrityError";
  constructor(readonly dir: string, readonly problems: string[]) {
    super(
      `model folder ${dir}: ${problems.join("; ")}. The file was changed or damaged: restore it ` +
        `(for the shipped model: git checkout -- ${dir}), or, if the change is intended, ` +
        `record it with: deno task manifest ${dir} --write`,
    );
  }
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${prefix}`)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listFiles(dir, rel));
    else if (e.isFile) out.push(rel);
  }
  return out;
}

/** Files that are part of a model folder's manifest (the recipe and the card are documentation). */
function isShipped(rel: string): boolean {
  return rel !== "manifest.json" && !rel.startsWith("recipe/") && !rel.endsWith(".md") &&
    !rel.endsWith(".png");
}

/** Builds the manifest of every shipped file under `dir`, sorted by path. */
export async function buildManifest(dir: string): Promise<Manifest> {
  const files: ManifestEntry[] = [];
  for (const path of (await listFiles(dir)).filter(isShipped).sort()) {
    const full = `${dir}/${path}`;
    files.push({ path, bytes: (await Deno.stat(full)).size, sha256: await sha256File(full) });
  }
  return { format: "blockcache-model-manifest/1", files };
}

/** Writes `dir/manifest.json` atomically. */
export async function writeManifest(dir: string): Promise<Manifest> {
  const manifest = await buildManifest(dir);
  await writeFileAtomic(`${dir}/manifest.json`, JSON.stringify(manifest, null, 1) + "\n");
  return manifest;
}

/**
 * Reads `dir/manifest.json`: undefined when the folder has none (a user's export); throws naming
 * the file when it cannot be read or is not a manifest.
 */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const path = `${dir}/manifest.json`;
  if (!(await statOrUndefined(path))) return undefined;
  let value: Partial<Manifest>;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new ModelIntegrityError(dir, [`manifest.json cannot be read (${(e as Error).message})`]);
  }
  const ok = Array.isArray(value?.files) &&
    value.files.every((f) =>
      typeof f?.path === "string" && !f.path.split("/").includes("..") && !f.path.startsWith("/") &&
      typeof f.bytes === "number" && typeof f.sha256 === "string"
    );
  if (!ok) {
    throw new ModelIntegrityError(dir, [
      "manifest.json is not a manifest ({files: [{path, bytes, sha256}]} with relative paths)",
    ]);
  }
  return value as Manifest;
}

/** The problems of `manifest`'s files under `dir`: size first, then sha256; one per file. */
async function fileProblems(dir: string, manifest: Manifest): Promise<string[]> {
  const problems: string[] = [];
  for (const f of manifest.files) {
    const full = `${dir}/${f.path}`;
    const info = await statOrUndefined(full).catch(() => undefined);
    if (!info?.isFile) problems.push(`${f.path} is missing`);
    else if (info.size !== f.bytes) {
      problems.push(`${f.path} is ${info.size} bytes, manifest.json says ${f.bytes}`);
    } else {
      const hash = await sha256File(full);
      if (hash !== f.sha256) {
        problems.push(`${f.path} has sha256 ${hash}, manifest.json says ${f.sha256}`);
      }
    }
  }
  return problems;
}

/**
 * Checks every file listed in `dir/manifest.json` (size, then sha256); returns the problems, one
 * per file, each naming it (empty when intact or when there is no manifest).
 */
export async function verifyManifest(dir: string): Promise<string[]> {
  try {
    const manifest = await readManifest(dir);
    return manifest ? await fileProblems(dir, manifest) : [];
  } catch (e) {
    if (e instanceof ModelIntegrityError) return e.problems;
    throw e;
  }
}

/**
 * The check before serving a model folder: every file its `manifest.json` lists has the recorded
 * size and sha256. Returns how many files were checked (0: the folder has no manifest, as a
 * user's own export may not); throws {@link ModelIntegrityError} naming each file that differs.
 * Cost: one read of every listed file (the default model: 7.5 MB, ~30 ms here; SD-1.5 fp32:
 * 4 GB, several seconds), so call it once per process start, before the model's sessions load.
 */
export async function verifyModelFolder(dir: string): Promise<number> {
  const manifest = await readManifest(dir);
  if (!manifest) return 0;
  const problems = await fileProblems(dir, manifest);
  if (problems.length) throw new ModelIntegrityError(dir, problems);
  return manifest.files.length;
}
