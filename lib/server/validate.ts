/**
 * Request validation: the body is read with a size limit, must be JSON of the right content type,
 * and every field is checked with an error that names it. Errors are `ApiError`s that the app turns
 * into `{error: {message, type, param, code}}`; nothing else ever reaches a client.
 *
 * @module
 */
import type { ModelInfo, SolverName } from "../pipeline/types.ts";
import { ApiError, badField } from "./errors.ts";
import { LIMITS, SOLVERS as PIPELINE_SOLVERS } from "../pipeline/request.ts";

/** Longest prompt or negative prompt, in characters (the pipeline's limit). */
export const MAX_PROMPT_CHARS = LIMITS.promptMaxChars;
/** Most images per request. */
export const MAX_N = 4;
/** Largest step count (the pipeline's limit). */
export const MAX_STEPS = LIMITS.stepsMax;
/** Guidance scale limits, inclusive (the pipeline's). */
export const MIN_GUIDANCE = LIMITS.guidanceMin;
export const MAX_GUIDANCE = LIMITS.guidanceMax;
/** Largest seed (seeds are unsigned 32-bit). */
export const MAX_SEED = LIMITS.seedMax;
/** Most partial images a streamed request may ask for per image. */
export const MAX_PARTIAL_IMAGES = 50;
/** Solvers a request may name. */
export const SOLVERS: readonly SolverName[] = PIPELINE_SOLVERS;

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
  preview: boolean;
  stream: boolean;
  /** Preview images per generated image while streaming (0 = progress without images). */
  partialImages: number;
}

/** Which endpoint is validating: the OpenAI-compatible JSON one or `/generate` (one PNG). */
export type Route = "openai" | "png";

const FIELDS = new Set([
  "prompt",
  "negative_prompt",
  "n",
  "size",
  "response_format",
  "output_format",
  "user",
  "model",
  "seed",
  "steps",
  "guidance_scale",
  "solver",
  "cache",
  "deadline_ms",
  "preview",
  "stream",
  "partial_images",
]);

function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw badField(key, `${key} must be a string`, "invalid_type");
  return v;
}

function int(
  body: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw badField(key, `${key} must be an integer`, "invalid_type");
  }
  if (v < min || v > max) throw badField(key, `${key} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function bool(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badField(key, `${key} must be true or false`, "invalid_type");
  return v;
}

function text(body: Record<string, unknown>, key: string, required: boolean): string {
  const v = str(body, key);
  if (v === undefined) {
    if (required) throw badField(key, `${key} is required`, "missing_field");
    return "";
  }
  if (required && v.trim() === "") throw badField(key, `${key} must not be empty`);
  const chars = [...v].length;
  if (chars > MAX_PROMPT_CHARS) {
    throw badField(key, `${key} is ${chars} characters long; at most ${MAX_PROMPT_CHARS} allowed`);
  }
  return v;
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * Validates a generation body against the loaded models. Throws `ApiError` (400, or 404 for an
 * unknown model) naming the first bad field.
 */
export function validateGeneration(
  body: Record<string, unknown>,
  models: ModelInfo[],
  route: Route,
  seedSource: () => number = randomSeed,
): GenerationParams {
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key)) {
      throw badField(key, `unknown field "${key.slice(0, 64)}"`, "unknown_field");
    }
  }
  const modelName = str(body, "model");
  const model = modelName === undefined ? models[0] : models.find((m) => m.name === modelName);
  if (!model) {
    throw new ApiError(404, {
      message: `model "${modelName!.slice(0, 100)}" does not exist; available: ${
        models.map((m) => m.name).join(", ")
      }`,
      param: "model",
      code: "model_not_found",
    });
  }
  const prompt = text(body, "prompt", true).trim();
  const negativePrompt = text(body, "negative_prompt", false);
  const n = int(body, "n", 1, MAX_N) ?? 1;
  if (route === "png" && n !== 1) {
    throw badField("n", "POST /generate answers one PNG; use /v1/images/generations for n > 1");
  }
  const native = `${model.width}x${model.height}`;
  const size = str(body, "size");
  if (size !== undefined && size !== "auto") {
    if (!/^\d{1,5}x\d{1,5}$/.test(size)) {
      throw badField("size", `size must look like "${native}", got "${size.slice(0, 32)}"`);
    }
    if (size !== native) {
      throw badField(
        "size",
        `size ${size} is not supported by model ${model.name}; supported: ${native}`,
        "unsupported_size",
      );
    }
  }
  const rf = str(body, "response_format");
  if (rf !== undefined && rf !== "b64_json") {
    throw badField(
      "response_format",
      `response_format "${rf.slice(0, 32)}" is not supported; only "b64_json" is`,
      "unsupported_value",
    );
  }
  if (route === "png" && rf !== undefined) {
    throw badField("response_format", "POST /generate answers PNG bytes; drop response_format");
  }
  const of = str(body, "output_format");
  if (of !== undefined && of !== "png") {
    throw badField(
      "output_format",
      `output_format "${of.slice(0, 32)}" is not supported; only "png" is`,
    );
  }
  const user = str(body, "user");
  if (user !== undefined && user.length > 256) {
    throw badField("user", "user is longer than 256 characters");
  }
  const seed = int(body, "seed", 0, MAX_SEED) ?? (seedSource() >>> 0);
  let steps = int(body, "steps", LIMITS.stepsMin, MAX_STEPS);
  const gs = body.guidance_scale;
  let guidanceScale = model.defaults.guidanceScale;
  if (gs !== undefined && gs !== null) {
    if (typeof gs !== "number" || !Number.isFinite(gs)) {
      throw badField("guidance_scale", "guidance_scale must be a number", "invalid_type");
    }
    if (gs < MIN_GUIDANCE || gs > MAX_GUIDANCE) {
      throw badField(
        "guidance_scale",
        `guidance_scale must be between ${MIN_GUIDANCE} and ${MAX_GUIDANCE}, got ${gs}`,
      );
    }
    guidanceScale = gs;
  }
  const solverRaw = str(body, "solver");
  if (solverRaw !== undefined && !(SOLVERS as readonly string[]).includes(solverRaw)) {
    throw badField(
      "solver",
      `unknown solver "${solverRaw.slice(0, 32)}"; one of ${SOLVERS.join(", ")}`,
      "unsupported_value",
    );
  }
  let solver = (solverRaw as SolverName | undefined) ?? model.defaults.solver;
  const cache = str(body, "cache") ?? "auto";
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
    if (solverRaw !== undefined && solverRaw !== sched.solver) {
      throw badField(
        "solver",
        `schedule ${sched.name} is for solver ${sched.solver}, got ${solverRaw}`,
      );
    }
    steps = sched.steps;
    solver = sched.solver;
    stepsPinned = true;
  }
  const preview = bool(body, "preview") ?? false;
  const streamRaw = bool(body, "stream");
  if (route === "png" && streamRaw) {
    throw badField(
      "stream",
      "POST /generate answers PNG bytes; use /v1/images/generations to stream",
    );
  }
  const stream = route === "openai" && (streamRaw ?? preview);
  const partialImages = int(body, "partial_images", 0, MAX_PARTIAL_IMAGES) ??
    (preview ? MAX_PARTIAL_IMAGES : 3);
  return {
    model,
    prompt,
    negativePrompt,
    n,
    seed,
    steps: steps ?? model.defaults.steps,
    stepsPinned,
    guidanceScale,
    solver,
    cache,
    preview,
    stream,
    partialImages,
  };
}

/** Preview cadence for the pipeline: every k-th step so about `partialImages` previews come out. */
export function previewEvery(steps: number, partialImages: number): number {
  if (partialImages <= 0) return 0;
  return Math.max(1, Math.ceil(steps / partialImages));
}
