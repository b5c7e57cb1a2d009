/**
 * sha256 of files, streamed so multi-gigabyte weights never sit in memory: the integrity check of
 * model folders and split plans.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The sha256 (hex) of a file, read in pieces. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** The sha256 (hex) of bytes already in memory. */
export function sha256Bytes(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
