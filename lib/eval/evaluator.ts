/**
 * The evaluation network shipped with a model (`eval/classifier.onnx`, an emoji-category
 * classifier trained on the real images) and the real images' features it was shipped with:
 * category accuracy, Fréchet distance and KID of generated images in its feature space.
 *
 * @module
 */
import type { RgbaImage } from "../image/png.ts";
import { frechetDistance } from "../metrics/fd.ts";
import { kernelInceptionDistance } from "../metrics/kid.ts";
import { type Backend } from "../runtime/backend.ts";
import { createSession, serialized } from "../runtime/session.ts";
import type { Session } from "../runtime/ort.ts";
import { float32Tensor, toFloat32 } from "../runtime/tensors.ts";

/** `eval/config.json`. */
export interface EvalConfig {
  classes: string[];
  heldout_accuracy: number;
  features: { file: string; count: number; dim: number; reference: number; holdout: number };
  /** Category index and caption of each real image whose features are shipped. */
  labels: number[];
  captions: string[];
}

/** Quality of a set of images against the real reference set. */
export interface QualityScore {
  /** Fraction of images the classifier puts in their intended category (when labels are given). */
  accuracy?: number;
  fd: number;
  kid: number;
  kidStd: number;
  count: number;
}

/** Images per classifier run. */
const BATCH = 64;

/** The loaded evaluation network and reference features. */
export class Evaluator {
  private constructor(
    readonly config: EvalConfig,
    private session: Session,
    /** Features of the 2048 reference real images. */
    readonly reference: Float32Array[],
    /** Features of the 256 held-out real images (the real-vs-real floor). */
    readonly holdout: Float32Array[],
  ) {}

  /** Loads `<model>/eval/` on the given backend (wasm gives bit-stable scores). */
  static async load(dir: string, backend: Backend = "wasm"): Promise<Evaluator> {
    const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`)) as EvalConfig;
    const session = await createSession(await Deno.readFile(`${dir}/classifier.onnx`), backend);
    const raw = await Deno.readFile(`${dir}/${config.features.file}`);
    const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const { dim, reference, holdout } = config.features;
    const rows = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => all.slice((from + i) * dim, (from + i + 1) * dim));
    return new Evaluator(config, session, rows(0, reference), rows(reference, holdout));
  }

  /** Captions of the held-out real images: prompts whose real counterparts are known. */
  get holdoutCaptions(): string[] {
    const { reference, holdout } = this.config.features;
    return this.config.captions.slice(reference, reference + holdout);
  }

  /** Category labels of the held-out real images. */
  get holdoutLabels(): number[] {
    const { reference, holdout } = this.config.features;
    return this.config.labels.slice(reference, reference + holdout);
  }

  /** Classifier features and predicted categories of RGBA images (composited on white). */
  async embed(images: RgbaImage[]): Promise<{ features: Float32Array[]; predicted: number[] }> {
    const features: Float32Array[] = [];
    const predicted: number[] = [];
    for (let start = 0; start < images.length; start += BATCH) {
      const batch = images.slice(start, start + BATCH);
      const { width, height } = batch[0];
      const plane = width * height;
      const x = new Float32Array(batch.length * 3 * plane);
      batch.forEach((img, n) => {
        for (let p = 0; p < plane; p++) {
          const a = img.data[p * 4 + 3] / 255;
          for (let c = 0; c < 3; c++) {
            const v = img.data[p * 4 + c] * a + 255 * (1 - a);
            x[(n * 3 + c) * plane + p] = v / 127.5 - 1;
          }
        }
      });
      const input = float32Tensor(x, [batch.length, 3, height, width]);
      const out = await serialized(() => this.session.run({ images: input }));
      const logits = await toFloat32(out.logits);
      const feats = await toFloat32(out.features);
      out.logits.dispose();
      out.features.dispose();
      const k = this.config.classes.length;
      const dim = feats.length / batch.length;
      for (let n = 0; n < batch.length; n++) {
        features.push(feats.slice(n * dim, (n + 1) * dim));
        let best = 0;
        for (let c = 1; c < k; c++) if (logits[n * k + c] > logits[n * k + best]) best = c;
        predicted.push(best);
      }
    }
    return { features, predicted };
  }

  /** Scores features against the reference set (and predictions against labels when given). */
  score(features: Float32Array[], predicted?: number[], labels?: number[]): QualityScore {
    const kid = kernelInceptionDistance(features, this.reference, {
      subsets: 50,
      subsetSize: Math.min(100, features.length),
      seed: 0,
    });
    const accuracy = predicted && labels
      ? predicted.filter((p, i) => p === labels[i]).length / predicted.length
      : undefined;
    return {
      accuracy,
      fd: frechetDistance(features, this.reference),
      kid: kid.mean,
      kidStd: kid.std,
      count: features.length,
    };
  }

  /** The real-vs-real floor: the held-out real images scored like generated ones. */
  floor(): QualityScore {
    return this.score(this.holdout);
  }

  /** Releases the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
