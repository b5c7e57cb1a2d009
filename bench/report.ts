/**
 * Prints bench/results/caching.json as the README's Markdown tables (Table 1 and the curve).
 *
 *   deno run --allow-read bench/report.ts [bench/results/caching.json]
 *
 * @module
 */
import type { CachingRow } from "./caching.ts";

const file = Deno.args[0] ?? new URL("./results/caching.json", import.meta.url).pathname;
const result = JSON.parse(await Deno.readTextFile(file)) as {
  machine: string;
  floor: { fd: number; kid: number };
  rows: (CachingRow & { prompts?: number })[];
};
const f = (x: number, d = 2) => Number.isFinite(x) ? x.toFixed(d) : "∞";
const line = (r: CachingRow & { prompts?: number }) =>
  `| ${r.solver.toUpperCase()} ${r.steps} | ${r.variant} | ${r.steps_run} | ${
    r.schedule ?? "—"
  } | ${f(r.speedup)}x | ${f(r.unet_ms, 0)} | ${f(r.images_per_s)} | ${f(r.fd)} | ${
    f(r.kid, 3)
  } | ${f(r.accuracy * 100, 1)}% | ${f(r.psnr)} | ${f(r.ssim, 3)} | ${
    f(r.skipped_fraction * 100, 0)
  }% | ${r.prompts ?? ""} |`;
const head =
  "| config | variant | steps run | schedule | UNet speedup | UNet ms/image | images/s | FD ↓ | KID ↓ | category acc. | PSNR vs full (dB) | SSIM vs full | blocks skipped | prompts |\n" +
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";
console.log(
  `Machine: ${result.machine}. Real-vs-real floor: FD ${f(result.floor.fd)}, KID ${
    f(result.floor.kid, 3)
  }.\n`,
);
console.log(head);
for (const r of result.rows.filter((r) => r.variant !== "curve")) console.log(line(r));
const curve = result.rows.filter((r) => r.variant === "curve");
if (curve.length) {
  console.log("\nSpeed-quality curve points:\n");
  console.log(head);
  for (const r of curve) console.log(line(r));
}
