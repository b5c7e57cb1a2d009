import { assertEquals, assertThrows } from "./_assert.ts";
import { type CachingResult, mergeCachingResults } from "../bench/merge.ts";
import type { CachingRow } from "../bench/caching.ts";

function row(solver: "dpm" | "ddim", steps: number, variant: CachingRow["variant"]): CachingRow {
  return {
    solver,
    steps,
    variant,
    steps_run: steps,
    schedule: null,
    speedup: 1,
    unet_ms: 100,
    e2e_ms: 110,
    images_per_s: 9,
    fd: 1,
    kid: 0.1,
    kid_std: 0.01,
    accuracy: 0.5,
    psnr: Infinity,
    ssim: 1,
    skipped_fraction: 0,
    cache_bytes: 0,
  };
}

function result(prompts: number, date: string, rows: CachingRow[]): CachingResult {
  return {
    machine: "m",
    backend: "wasm",
    model: "emoji-ldm",
    prompts,
    date,
    floor: { fd: 0.5, kid: 0 },
    rows,
  };
}

Deno.test("merge: rows keep input order and their own prompt count", () => {
  const merged = mergeCachingResults([
    { name: "a", result: result(256, "2026-01-02", [row("dpm", 20, "full")]) },
    {
      name: "b",
      result: result(64, "2026-01-03", [row("ddim", 50, "full"), row("ddim", 50, "cache")]),
    },
  ]);
  assertEquals(merged.rows.map((r) => [r.solver, r.variant, r.prompts]), [
    ["dpm", "full", 256],
    ["ddim", "full", 64],
    ["ddim", "cache", 64],
  ]);
  assertEquals(merged.prompts, 64);
  assertEquals(merged.date, "2026-01-03");
});

Deno.test("merge: results from another machine or floor are refused, naming the file", () => {
  const a = result(256, "d", [row("dpm", 20, "full")]);
  assertThrows(
    () =>
      mergeCachingResults([{ name: "a", result: a }, {
        name: "b",
        result: { ...a, machine: "x" },
      }]),
    'b: machine "x"',
  );
  assertThrows(
    () =>
      mergeCachingResults([{ name: "a", result: a }, {
        name: "c",
        result: { ...a, floor: { fd: 0.7, kid: 0 } },
      }]),
    "c: its real-vs-real floor",
  );
  assertThrows(() => mergeCachingResults([]), "nothing to merge");
});
