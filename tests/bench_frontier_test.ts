import { assertClose, assertEquals } from "./_assert.ts";
import { deadlineTable, fdNoise, isoQualityTable } from "../bench/frontier.ts";
import type { FrontierPlan } from "../lib/planning/frontier.ts";
import { syntheticFrontier } from "./support/frontier.ts";

function plan(
  id: string,
  steps: number,
  schedule: string | null,
  ms: number,
  fd: number,
): FrontierPlan {
  return {
    id,
    steps,
    schedule,
    ...(schedule ? { scheduleSha256: "0".repeat(64) } : {}),
    skippedFraction: schedule ? 0.5 : 0,
    cost: { evaluations: { g: steps } },
    quality: { fd, kid: 0, kidStd: 0, accuracy: 1, psnr: null, ssim: 1 },
    measuredMs: { unet: ms - 20, total: ms },
  };
}

const f = syntheticFrontier("dpm", [{ name: "g", block: false }], [
  plan("dpm-50-none", 50, null, 1800, 3.0),
  plan("dpm-20-none", 20, null, 700, 3.1),
  plan("dpm-20-a", 20, "a", 500, 3.2),
  plan("dpm-10-none", 10, null, 360, 3.3),
  plan("dpm-10-a", 10, "a", 250, 3.6),
  plan("dpm-4-none", 4, null, 150, 7),
]);

Deno.test("deadlineTable: each time either frontier improves, up to the full run", () => {
  const rows = deadlineTable(f).map((r) =>
    `${r.deadlineMs} ${r.cached?.id ?? "-"} ${r.uncached?.id ?? "-"}`
  );
  assertEquals(rows, [
    "150 dpm-4-none dpm-4-none",
    "250 dpm-10-a dpm-4-none",
    "360 dpm-10-none dpm-10-none",
    "500 dpm-20-a dpm-10-none",
    "700 dpm-20-none dpm-20-none",
    "1800 dpm-50-none dpm-50-none",
  ]);
});

Deno.test("isoQualityTable: the speedup of caching at each FD of the front", () => {
  const rows = isoQualityTable(f).map((r) =>
    `${r.fd} ${r.any.id} ${r.uncached?.id ?? "-"} ${r.uncached?.speedup ?? "-"}`
  );
  assertEquals(rows, [
    "7 dpm-4-none dpm-4-none 1",
    "3.6 dpm-10-a dpm-10-none 1.44",
    "3.3 dpm-10-none dpm-10-none 1",
    "3.2 dpm-20-a dpm-20-none 1.4",
    "3.1 dpm-20-none dpm-20-none 1",
    "3 dpm-50-none dpm-50-none 1",
  ]);
  // with FD's seed spread as tolerance, an uncached plan within it counts as reaching the FD
  const noisy = { ...f, fdSpread: { plan: "dpm-10-none", fd: [3.3, 3.45] } };
  const at32 = isoQualityTable(noisy).find((r) => r.fd === 3.2)!;
  assertEquals([at32.withinNoise?.id, at32.withinNoise?.speedup], ["dpm-10-none", 0.72]);
  assertClose(fdNoise(noisy), 0.15, 1e-12);
});
