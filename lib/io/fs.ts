/**
 * File-system questions the tools and the service ask before reading or writing.
 *
 * @module
 */

/**
 * `Deno.stat(path)`, or `undefined` when nothing is there. Other failures (no permission, an I/O
 * error) are thrown, so a caller never mistakes "cannot look" for "absent".
 */
export async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Whether `path` is a regular file (false when absent; other failures are thrown). */
export async function isFile(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isFile ?? false;
}
