/**
 * `deno task bench split --model <export>` on an SD-shaped export: the inputs take the model's real
 * sizes (the native latent from the `config.json` beside the export, 77 tokens, the timestep as
 * declared), not the batch value in every symbolic dimension.
 */
import { assert, assertEquals } from "./_assert.ts";
import { benchSplit } from "../bench/split.ts";
import { materializeSdFolder } from "./support/sd_fixture.ts";

Deno.test("bench split: an SD-shaped export runs at its native latent size", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench-split-test-" });
  try {
    await materializeSdFolder(dir, { timestep: "float32_scalar" });
    const lines: string[] = [];
    const r = await benchSplit({
      model: `${dir}/unet/model.onnx`,
      reps: 1,
      warmup: 0,
      log: (l) => lines.push(l),
    });
    assertEquals([r.segments, r.blocks], [15, 7]);
    const inputs = lines.find((l) => l.startsWith("inputs:"));
    assert(inputs?.includes("sample [2, 4, 8, 8]"), inputs);
    assert(inputs?.includes("timestep []"), inputs);
    assert(inputs?.includes("encoder_hidden_states [2, 77, 8]"), inputs);
    assert(r.splitMs > 0 && r.monolithicMs > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
