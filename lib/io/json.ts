/**
 * JSON text read from a file or a request, with errors that name where it came from.
 *
 * @module
 */

/** `JSON.parse(text)`; a syntax error becomes `<source>: not valid JSON (<reason>)`. */
export function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
  }
}
