/**
 * Writing files so that readers never see half of one: a temporary file in the same folder, then
 * a rename (atomic on one file system). Every tool that writes a result uses it.
 *
 * @module
 */

/** Prefix of the temporary files, so a folder's leftovers from a crash can be recognised. */
export const TEMP_PREFIX = ".tmp-";

/** Writes `data` (bytes or text) to `path` atomically; on failure no temporary file is left. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash + 1) : "";
  const base = path.slice(slash + 1);
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
  const tmp = `${dir}${TEMP_PREFIX}${base}.${rand}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Whether a file name is one of {@link writeFileAtomic}'s temporary files. */
export function isTempFile(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) && name.endsWith(".tmp");
}
