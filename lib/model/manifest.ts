/**
 * The model folder's integrity manifest (`manifest.json`): the sha256 and size of every shipped
 * file, so a replica can prove at start-up that it serves exactly the weights that were tested.
 *
 * @module
 */
import { writeFileAtomic } from "../io/atomic.ts";
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

/** Checks every file listed in `dir/manifest.json`; returns the list of problems (empty when intact). */
export async function verifyManifest(dir: string): Promise<string[]> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  } catch (e) {
    return [`${dir}/manifest.json: ${(e as Error).message}`];
  }
  const problems: string[] = [];
  for (const f of manifest.files ?? []) {
    const full = `${dir}/${f.path}`;
    try {
      const hash = await sha256File(full);
      if (hash !== f.sha256) problems.push(`${f.path}: sha256 ${hash} != manifest ${f.sha256}`);
    } catch {
      problems.push(`${f.path}: missing`);
    }
  }
  return problems;
}
