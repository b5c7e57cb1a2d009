/**
 * Merges caching-benchmark results that were run as separate processes (one per configuration,
 * `deno task bench caching --configs dpm-50 --name caching_dpm-50 --timing …`) into one file for
 * the README table: rows in the order of the inputs, each row keeping its own prompt count.
 * The inputs must come from the same model and machine, with the same real-vs-real floor.
 *
 *   deno run --allow-read --allow-write bench/merge.ts OUT.json IN.json [IN.json …]
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import type { CachingRow } from "./caching.ts";

/** One result file of bench/caching.ts. */
export interface CachingResult {
  machine: string;
  backend: string;
  model: string;
  prompts: number;
  date: string;
  floor: { fd: number; kid: number };
  rows: (CachingRow & { prompts?: number })[];
}

/** Concatenates the rows of results from one model and machine; throws naming a mismatch. */
export function mergeCachingResults(
  parts: { name: string; result: CachingResult }[],
): CachingResult {
  if (parts.length === 0) throw new Error("nothing to merge: name at least one result file");
  const [first] = parts;
  for (const { name, result } of parts) {
    for (const key of ["machine", "model", "backend"] as const) {
      if (result[key] !== first.result[key]) {
        throw new Error(
          `${name}: ${key} "${result[key]}" differs from ${first.name}'s "${first.result[key]}"`,
        );
      }
    }
    if (Math.abs(result.floor.fd - first.result.floor.fd) > 1e-9) {
      throw new Error(`${name}: its real-vs-real floor differs from ${first.name}'s`);
    }
  }
  const rows = parts.flatMap(({ result }) =>
    result.rows.map((r) => ({ ...r, prompts: r.prompts ?? result.prompts }))
  );
  return {
    ...first.result,
    prompts: Math.min(...parts.map((p) => p.result.prompts)),
    date: parts.map((p) => p.result.date).sort().at(-1)!,
    rows,
  };
}

if (import.meta.main) {
  const [out, ...inputs] = Deno.args;
  if (!out || inputs.length === 0) {
    console.error("usage: deno run --allow-read --allow-write bench/merge.ts OUT.json IN.json …");
    Deno.exit(2);
  }
  try {
    const parts = await Promise.all(inputs.map(async (name) => ({
      name,
      result: JSON.parse(await Deno.readTextFile(name)) as CachingResult,
    })));
    const merged = mergeCachingResults(parts);
    await writeFileAtomic(out, JSON.stringify(merged, null, 1) + "\n");
    console.log(`${out}: ${merged.rows.length} rows from ${inputs.length} files`);
  } catch (e) {
    console.error(`merge: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
