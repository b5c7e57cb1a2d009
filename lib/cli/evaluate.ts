/**
 * `deno task evaluate`: scores the default model (or a folder of PNGs) against real emoji in the
 * evaluation network's feature space: category accuracy, Fréchet distance and KID, beside the
 * real-vs-real floor (256 held-out real images against the 2048 reference images).
 *
 *   deno task evaluate [--model DIR] [--prompts 256] [--steps 20] [--solver dpm] [--cache none]
 *   deno task evaluate --images DIR         # any folder of 64x64 PNGs (no accuracy: no labels)
 *
 * @module
 */
import { Evaluator } from "../eval/evaluator.ts";
import { decodePng, type RgbaImage } from "../image/png.ts";
import { Pipeline } from "../pipeline/pipeline.ts";
import { DEFAULTS, FieldError, resolveRequest, SOLVERS } from "../pipeline/request.ts";
import { verifyModelFolder } from "../model/manifest.ts";
import {
  flagProblem,
  noPositionals,
  parseFlags,
  requestFields,
  UsageError,
  usageMessage,
} from "./flags.ts";

/** The `--help` text: every flag with its default. */
export const USAGE = `usage: deno task evaluate [options]
       deno task evaluate --images DIR

Scores generated images against real emoji in the evaluation network's feature space (FD, KID,
category accuracy), beside the real-vs-real floor.

options (default in brackets):
  --model DIR          model folder with an eval/ network [models/emoji-ldm]
  --prompts N          held-out captions to generate, 2..4096 [256]
  --steps N            denoising steps [${DEFAULTS.steps}]
  --solver NAME        ${SOLVERS.join(", ")} [${DEFAULTS.solver}]
  --guidance X         guidance scale [${DEFAULTS.guidanceScale}]
  --cache VALUE        none, auto (the lowest measured FD at these steps, as in generate) or a
                       schedule name [none]
  --batch N            images per denoising loop [32]
  --images DIR         score a folder of 64x64 PNGs instead (no accuracy: no labels)
  -h, --help           this text`;

/** Runs the command; returns the exit code. */
export async function evaluateCommand(args: string[]): Promise<number> {
  try {
    const { flags, positional, help } = parseFlags(args, {
      model: "string",
      prompts: "int",
      steps: "int",
      solver: "string",
      guidance: "number",
      cache: "string",
      batch: "int",
      images: "string",
    });
    if (help) {
      console.log(USAGE);
      return 0;
    }
    noPositionals(positional);
    const modelDir = String(flags.model ?? "models/emoji-ldm");
    const evaluator = await Evaluator.load(`${modelDir}/eval`).catch(() => {
      throw new UsageError(`--model: ${modelDir}/eval has no evaluation network`);
    });
    const floor = evaluator.floor();
    console.log(
      `real vs real (256 held-out): FD ${floor.fd.toFixed(2)}  KID ${floor.kid.toFixed(4)}`,
    );
    const images: RgbaImage[] = [];
    let labels: number[] | undefined;
    if (flags.images) {
      const dir = String(flags.images);
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && e.name.endsWith(".png")) {
          images.push(decodePng(await Deno.readFile(`${dir}/${e.name}`)));
        }
      }
      if (!images.length) throw new UsageError(`--images: no .png files in ${dir}`);
    } else {
      const n = Number(flags.prompts ?? 256);
      if (n < 2 || n > 4096) throw new UsageError("--prompts must be in 2..4096");
      const base = resolveRequest({
        ...requestFields({ steps: flags.steps, solver: flags.solver, guidance: flags.guidance }),
        prompt: "x",
        seed: 0,
        cache: flags.cache ?? "none",
      });
      await verifyModelFolder(modelDir);
      const pipeline = await Pipeline.load(modelDir, { backend: "wasm", log: () => {} });
      const captions = evaluator.holdoutCaptions;
      labels = Array.from({ length: n }, (_, i) => evaluator.holdoutLabels[i % captions.length]);
      const batch = Number(flags.batch ?? 32);
      const t0 = performance.now();
      for (let i = 0; i < n; i += batch) {
        const reqs = Array.from(
          { length: Math.min(batch, n - i) },
          (_, k) => ({ ...base, prompt: captions[(i + k) % captions.length], seed: i + k }),
        );
        images.push(...(await pipeline.generateBatch(reqs)).map((r) => r.image));
      }
      console.log(
        `generated ${n} images (${base.solver}, ${base.steps} steps, guidance ${base.guidanceScale}, ` +
          `cache ${base.cache}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      await pipeline.release();
    }
    const { features, predicted } = await evaluator.embed(images);
    const s = evaluator.score(features, predicted, labels);
    console.log(
      `generated (${s.count}): FD ${s.fd.toFixed(2)}  KID ${s.kid.toFixed(4)} ± ${
        s.kidStd.toFixed(4)
      }` +
        (s.accuracy !== undefined ? `  category accuracy ${(s.accuracy * 100).toFixed(1)}%` : ""),
    );
    const realAcc = evaluator.config.heldout_accuracy;
    console.log(`classifier accuracy on held-out real images: ${(realAcc * 100).toFixed(1)}%`);
    await evaluator.release();
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(usageMessage("evaluate", USAGE, e));
      return 2;
    }
    if (e instanceof FieldError) {
      console.error(`evaluate: ${flagProblem(e.field, e.message)}`);
      return 2;
    }
    console.error(`evaluate: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await evaluateCommand(Deno.args));
