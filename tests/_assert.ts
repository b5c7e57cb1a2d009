/**
 * Tiny assertion helpers for the tests (JSR's @std/assert is unreachable here): thin wrappers of
 * `node:assert/strict` plus a message-substring check for thrown Errors and a tolerance compare.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Fails unless `cond` is truthy. */
export function assert(cond: unknown, msg?: string): asserts cond {
  if (msg === undefined) nodeAssert.ok(cond);
  else nodeAssert.ok(cond, msg);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  if (msg === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Fails unless `|actual − expected| <= tol`. */
export function assertClose(actual: number, expected: number, tol: number, msg = ""): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${expected} ± ${tol}, got ${actual}`);
  }
}

/** Fails unless `fn` throws an Error whose message includes `includes`; returns the Error. */
export function assertThrows(fn: () => unknown, includes: string): Error {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${String(e)}`);
    if (!e.message.includes(includes)) {
      throw new Error(`expected an error including ${JSON.stringify(includes)}, got: ${e.message}`);
    }
    return e;
  }
  throw new Error(`expected an error including ${JSON.stringify(includes)}, nothing was thrown`);
}

/** Awaits `fn()` and checks that it rejects with an Error whose message includes `includes`. */
export async function assertRejects(fn: () => Promise<unknown>, includes = ""): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`rejected with a non-Error: ${String(e)}`);
    if (!e.message.includes(includes)) {
      throw new Error(
        `expected a rejection including ${JSON.stringify(includes)}, got: ${e.message}`,
      );
    }
    return e;
  }
  throw new Error(`expected a rejection including ${JSON.stringify(includes)}, it resolved`);
}
