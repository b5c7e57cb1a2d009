/**
 * STUB, replaced by the lead: loads the default model from `modelsDir` on `backend` and returns
 * the real pipeline behind the service's `ImageGenerator` interface.
 *
 * @module
 */
import type { ImageGenerator } from "../server/generator.ts";

/** Loads the default model as an `ImageGenerator` (not implemented yet). */
export function loadGenerator(modelsDir: string, backend: string): Promise<ImageGenerator> {
  return Promise.reject(
    new Error(`loadGenerator(${modelsDir}, ${backend}) is not implemented yet`),
  );
}
