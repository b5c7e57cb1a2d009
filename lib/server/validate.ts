/**
 * Request validation for the generation routes: the JSON body (content type, UTF-8, an object),
 * then its fields against the one request schema (`lib/pipeline/request.ts`), then what depends
 * on the loaded models (the model, its size and schedules, and that the prompt has a word the
 * model knows). Every error is an {@link ApiError} that names the field.
 *
 * @module
 */
import type { ModelInfo, SolverName } from "../pipeline/types.ts";
import { ApiError, badField } from "./errors.ts";
import { ImagesApiRequest, LIMITS, parseFields, randomSeed } from "../pipeline/request.ts";
import { assertPromptUsable, PromptError, type PromptReport } from "../model/prompt.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { sizeProblem } from "../model/sizes.ts";

/**
 * Parses a JSON body (its size is limited before, by Hono's `bodyLimit`): `Content-Type` must be
 * `application/json` (415), the bytes valid UTF-8 and a JSON object (400).
 */
export async function parseJsonBody(req: Request): Promise<Record<string, unknown>> {
  const ct = req.headers.get("content-type");
  const mime = ct?.split(";")[0].trim().toLowerCase();
  if (mime !== "application/json") {
    throw new ApiError(415, {
      message: `Content-Type must be application/json, got ${
        ct ? `"${ct.slice(0, 100)}"` : "none"
      }`,
      param: "content-type",
      code: "unsupported_media_type",
    });
  }
  const invalid = (message: string) =>
    new ApiError(400, { message, param: "body", code: "invalid_json" });
  let bytes: ArrayBuffer;
  try {
    bytes = await req.arrayBuffer();
  } catch {
    throw new ApiError(400, { message: "the request body could not be read", param: "body" });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw invalid("the request body is not valid UTF-8");
  }
  if (text.trim() === "") throw invalid("the request body is empty; send a JSON object");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("the request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("the request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** A validated generation request (defaults applied; `cache` still may be `auto`). */
export interface GenerationParams {
  model: ModelInfo;
  prompt: string;
  negativePrompt: string;
  /** What the text encoder reads of the prompt (tokens, truncation). */
  promptReport: PromptReport;
  n: number;
  /** Seed of the first image; image i uses `(seed + i) mod 2^32`. */
  seed: number;
  steps: number;
  /** True when the request named `steps` (or a schedule, which fixes them). */
  stepsPinned: boolean;
  guidanceScale: number;
  solver: SolverName;
  /** `auto`, `none` or a schedule name of the model. */
  cache: string;
  /** Output size in pixels (the model's native size unless `size` asked for another it serves). */
  width: number;
  height: number;
  /** `deadline_ms` as sent (checked against the service's limit by the deadline resolver). */
  deadlineMs?: number;
  preview: boolean;
  stream: boolean;
  /** Preview images per generated image while streaming (0 = progress without images). */
  partialImages: number;
  /** OpenAI's `quality` as asked (`auto` when absent): reported back, changes nothing. */
  quality: string;
}

/** Which endpoint is validating: the OpenAI-compatible JSON one or `/generate` (one PNG). */
export type Route = "openai" | "png";

/**
 * Validates a generation body against the request schema and the loaded models. Throws
 * `ApiError` (400, or 404 for an unknown model) naming the first bad field.
 */
export function validateGeneration(
  body: Record<string, unknown>,
  models: ModelInfo[],
  route: Route,
  tokenizer: (model: string) => Tokenizer,
  seedSource: () => number = randomSeed,
): GenerationParams {
  const parsed = parseFields(ImagesApiRequest, body);
  if (!parsed.ok) {
    const { path, message, code } = parsed.problem;
    throw badField(path, message, code);
  }
  const v = parsed.value;
  const model = v.model == null ? models[0] : models.find((m) => m.name === v.model);
  if (!model) {
    throw new ApiError(404, {
      message: `model "${v.model!.slice(0, 100)}" does not exist; available: ${
        models.map((m) => m.name).join(", ")
      }`,
      param: "model",
      code: "model_not_found",
    });
  }
  let promptReport: PromptReport;
  try {
    promptReport = assertPromptUsable(tokenizer(model.name), v.prompt, "prompt").report;
  } catch (e) {
    if (e instanceof PromptError) throw badField(e.field, e.message, "unusable_prompt");
    throw e;
  }
  const n = v.n ?? 1;
  if (route === "png") {
    if (n !== 1) {
      throw badField("n", "POST /generate answers one PNG; use /v1/images/generations for n > 1");
    }
    if (v.response_format != null) {
      throw badField("response_format", "POST /generate answers PNG bytes; drop response_format");
    }
    if (v.stream) {
      throw badField(
        "stream",
        "POST /generate answers PNG bytes; use /v1/images/generations to stream",
      );
    }
  }
  let width = model.width, height = model.height;
  if (v.size != null && v.size !== "auto") {
    [width, height] = v.size.split("x").map(Number);
    const support = model.sizes ??
      {
        native: { width: model.width, height: model.height },
        dynamic: false,
        multipleOf: 1,
        min: 0,
        max: 0,
      };
    const problem = sizeProblem(support, { width, height });
    if (problem) {
      throw badField(
        "size",
        `size ${v.size} is not served by model ${model.name}: ${problem}`,
        "unsupported_size",
      );
    }
  }
  let steps = v.steps ?? undefined;
  let solver: SolverName = v.solver ?? model.defaults.solver;
  const cache = v.cache ?? "auto";
  let stepsPinned = steps !== undefined;
  if (cache !== "auto" && cache !== "none") {
    const sched = model.schedules.find((s) => s.name === cache);
    if (!sched) {
      const names = model.schedules.map((s) => s.name);
      throw badField(
        "cache",
        `unknown schedule "${cache.slice(0, 100)}" for model ${model.name}; use "auto", "none"${
          names.length ? ` or one of ${names.join(", ")}` : ""
        }`,
        "unknown_schedule",
      );
    }
    if (steps !== undefined && steps !== sched.steps) {
      throw badField(
        "steps",
        `schedule ${sched.name} is for ${sched.steps} steps, got steps ${steps}`,
      );
    }
    if (v.solver != null && v.solver !== sched.solver) {
      throw badField(
        "solver",
        `schedule ${sched.name} is for solver ${sched.solver}, got ${v.solver}`,
      );
    }
    steps = sched.steps;
    solver = sched.solver;
    stepsPinned = true;
  }
  const preview = v.preview ?? false;
  return {
    model,
    prompt: v.prompt.trim(),
    negativePrompt: v.negative_prompt ?? "",
    promptReport,
    n,
    width,
    height,
    seed: v.seed ?? (seedSource() >>> 0),
    steps: steps ?? model.defaults.steps,
    stepsPinned,
    guidanceScale: v.guidance_scale ?? model.defaults.guidanceScale,
    solver,
    cache,
    deadlineMs: v.deadline_ms ?? undefined,
    preview,
    stream: route === "openai" && (v.stream ?? preview),
    partialImages: v.partial_images ?? (preview ? LIMITS.partialImagesMax : 3),
    quality: v.quality ?? "auto",
  };
}

/**
 * Preview cadence for the pipeline (a preview at every k-th step before the last): partial images
 * are previews before the final image, as in OpenAI's image streaming, so at most
 * `partialImages` of them fall strictly before the final step, as many as one cadence allows
 * (`steps` 8, `partialImages` 1: step 4; 20 and 3: steps 5, 10, 15). 0 (none) for no partial
 * images or a 1-step generation.
 */
export function previewEvery(steps: number, partialImages: number): number {
  if (partialImages <= 0 || steps <= 1) return 0;
  return Math.floor((steps - 1) / (partialImages + 1)) + 1;
}
