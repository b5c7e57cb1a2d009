import { assert, assertEquals } from "./_assert.ts";
import { Evaluator } from "../lib/eval/evaluator.ts";
import type { RgbaImage } from "../lib/image/png.ts";

const MODEL = new URL("../models/emoji-ldm", import.meta.url).pathname;
const ev = await Evaluator.load(`${MODEL}/eval`);

function flat(r: number, g: number, b: number): RgbaImage {
  const data = new Uint8Array(64 * 64 * 4);
  for (let p = 0; p < 64 * 64; p++) data.set([r, g, b, 255], p * 4);
  return { width: 64, height: 64, data };
}

Deno.test("evaluator: reference and held-out features are shipped with labels and captions", () => {
  assertEquals(ev.reference.length, 2048);
  assertEquals(ev.holdout.length, 256);
  assertEquals(ev.holdoutCaptions.length, 256);
  assert(ev.holdoutLabels.every((l) => l >= 0 && l < ev.config.classes.length));
});

Deno.test("evaluator: the real-vs-real floor is small next to flat colour images", async () => {
  const floor = ev.floor();
  const { features } = await ev.embed(
    Array.from({ length: 64 }, (_, i) => flat((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)),
  );
  const flatScore = ev.score(features);
  assert(floor.fd < flatScore.fd / 2, `floor ${floor.fd} vs flat ${flatScore.fd}`);
  assert(floor.kid < flatScore.kid, `floor KID ${floor.kid} vs flat ${flatScore.kid}`);
});

Deno.test("evaluator: embedding is deterministic and batch-independent", async () => {
  const imgs = [flat(255, 0, 0), flat(255, 255, 255), flat(0, 0, 255)];
  const a = await ev.embed(imgs);
  const b = await ev.embed([imgs[1]]);
  assertEquals(Array.from(a.features[1]), Array.from(b.features[0]));
  assertEquals(a.predicted[1], b.predicted[0]);
});

Deno.test("evaluator: accuracy counts predictions that match labels", () => {
  const s = ev.score(ev.holdout.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 0], [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    8,
  ]);
  assertEquals(s.accuracy, 0.9);
});
