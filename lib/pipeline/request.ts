/**
 * The one definition of an image request (zod schemas): each field's type, range and message is
 * written once here, and the HTTP API (`POST /v1/images/generations`, `POST /generate`), the CLI
 * (flags and `--batch` lines), the cron jobs file and the playground's types are derived from it.
 * Field names are the HTTP API's (`negative_prompt`, `guidance_scale`); the CLI maps its flags
 * onto them. What depends on a loaded model (its name, size, schedules, vocabulary) is checked by
 * the caller after parsing.
 *
 * Prompt lengths count Unicode code points (`[..."🍎"].length === 1`), everywhere.
 *
 * @module
 */
import { z } from "zod";
import type { GenerateRequest, SolverName } from "./types.ts";
import { SOLVERS } from "../solvers/solver.ts";

/** Solvers by name. */
export { SOLVERS };

/** Limits every caller enforces. */
export const LIMITS = {
  /** Longest prompt or negative prompt, in Unicode code points. */
  promptMaxChars: 1000,
  stepsMin: 1,
  stepsMax: 100,
  guidanceMin: 0,
  guidanceMax: 30,
  seedMax: 0xffffffff,
  /** Most images per HTTP request. */
  nMax: 4,
  /** Most preview images per image while streaming. */
  partialImagesMax: 50,
  /** Longest deadline in ms (10 minutes). */
  deadlineMaxMs: 600_000,
} as const;

/** Defaults for fields a request leaves out. */
export interface RequestDefaults {
  steps: number;
  guidanceScale: number;
  solver: SolverName;
  cache: string;
}

/** The project-wide defaults (20 steps of DPM-Solver++ with guidance 4, shipped cache schedule). */
export const DEFAULTS: RequestDefaults = {
  steps: 20,
  guidanceScale: 4,
  solver: "dpm",
  cache: "auto",
};

/** A value as messages show it (JSON, at most 40 characters). */
function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** A prompt's length in the one unit every caller counts: Unicode code points. */
export function promptLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** An integer in [min, max]; one message for every way to miss it. */
function integer(min: number, max: number) {
  const error = (i: { input?: unknown }) =>
    `must be an integer from ${min} to ${max}, got ${shown(i.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A string (`required`: present and not blank). */
function text(required: boolean) {
  return z.string({
    error: (i) => i.input === undefined ? "is required" : `must be a string, got ${shown(i.input)}`,
  }).refine((s) => !required || s.trim() !== "", { error: "must not be empty" }).refine(
    (s) => promptLength(s) <= LIMITS.promptMaxChars,
    {
      error: (i) =>
        `is ${
          promptLength(i.input as string)
        } characters (Unicode code points); at most ${LIMITS.promptMaxChars}`,
    },
  );
}

/** One of `values` (`must be one of "a", "b"`; a single value: `must be "a"`). */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  const allowed = values.map((v) => `"${v}"`).join(", ");
  return z.enum(values, {
    error: (i) => `must be ${values.length > 1 ? "one of " : ""}${allowed}, got ${shown(i.input)}`,
  });
}

/** The prompt: not blank, at most `LIMITS.promptMaxChars` code points. */
export const Prompt = text(true);
/** The negative prompt (may be empty). */
export const NegativePrompt = text(false);
/** The seed of the initial noise (unsigned 32-bit). */
export const Seed = integer(0, LIMITS.seedMax);
/** Denoising steps. */
export const Steps = integer(LIMITS.stepsMin, LIMITS.stepsMax);
/** Classifier-free guidance scale; at most 1 means no guidance (one batch, conditional only). */
export const GuidanceScale = z.number({
  error: (i) =>
    `must be a number from ${LIMITS.guidanceMin} to ${LIMITS.guidanceMax}, got ${shown(i.input)}`,
}).min(LIMITS.guidanceMin, {
  error: (i) =>
    `must be from ${LIMITS.guidanceMin} to ${LIMITS.guidanceMax}, got ${shown(i.input)}`,
}).max(LIMITS.guidanceMax, {
  error: (i) =>
    `must be from ${LIMITS.guidanceMin} to ${LIMITS.guidanceMax}, got ${shown(i.input)}`,
});
/** The solver. */
export const Solver = oneOf(SOLVERS);
/** `auto`, `none` or a schedule (by id, short name, or, in the CLI, a schedule file). */
export const Cache = z.string({ error: (i) => `must be a string, got ${shown(i.input)}` })
  .trim().min(1, { error: "must not be empty" }).max(500, { error: "is too long" });

/** The fields every image request has, as the HTTP API names them. */
export const ImageRequestFields = {
  prompt: Prompt,
  negative_prompt: NegativePrompt.nullish(),
  seed: Seed.nullish(),
  steps: Steps.nullish(),
  guidance_scale: GuidanceScale.nullish(),
  solver: Solver.nullish(),
  cache: Cache.nullish(),
};

/** An image request: the prompt and the generation fields (CLI `--batch` lines add an `id`). */
export const ImageRequest = z.strictObject(ImageRequestFields);

/** An image request as sent (before defaults). */
export type ImageRequestInput = z.input<typeof ImageRequest>;

/**
 * `POST /v1/images/generations` (and `/generate`): the image request plus the OpenAI fields
 * clients send. `quality`, `style`, `moderation`, `output_compression` and `user` are accepted and
 * change nothing (documented no-ops); `response_format`, `output_format` and `background` accept
 * only what this service makes (`b64_json`, `png`, an opaque background).
 */
export const ImagesApiRequest = z.strictObject({
  ...ImageRequestFields,
  model: z.string({ error: (i) => `must be a string, got ${shown(i.input)}` }).nullish(),
  n: integer(1, LIMITS.nMax).nullish(),
  size: z.string({ error: (i) => `must be a string, got ${shown(i.input)}` }).regex(
    /^(auto|\d{1,5}x\d{1,5})$/,
    { error: (i) => `must look like "512x512" or be "auto", got ${shown(i.input)}` },
  ).nullish(),
  response_format: oneOf(["b64_json"]).nullish(),
  output_format: oneOf(["png"]).nullish(),
  background: oneOf(["auto", "opaque"]).nullish(),
  quality: oneOf(["auto", "low", "medium", "high", "standard", "hd"]).nullish(),
  style: oneOf(["vivid", "natural"]).nullish(),
  moderation: oneOf(["auto", "low"]).nullish(),
  output_compression: integer(0, 100).nullish(),
  user: z.string({ error: (i) => `must be a string, got ${shown(i.input)}` }).max(256, {
    error: "is longer than 256 characters",
  }).nullish(),
  stream: z.boolean({ error: (i) => `must be true or false, got ${shown(i.input)}` }).nullish(),
  partial_images: integer(0, LIMITS.partialImagesMax).nullish(),
  preview: z.boolean({ error: (i) => `must be true or false, got ${shown(i.input)}` }).nullish(),
  deadline_ms: integer(1, LIMITS.deadlineMaxMs).nullish(),
});

/** A parsed `POST /v1/images/generations` body. */
export type ImagesApiRequest = z.infer<typeof ImagesApiRequest>;
/** A `POST /v1/images/generations` body as a client sends it. */
export type ImagesApiRequestInput = z.input<typeof ImagesApiRequest>;

/** The first problem of a failed parse: where (a path such as `jobs[0].steps`) and what. */
export interface FieldProblem {
  /** The field's path (`""` for the value itself). */
  path: string;
  message: string;
  /** `unknown_field`, `missing_field`, `invalid_type` or `invalid_value`. */
  code: "unknown_field" | "missing_field" | "invalid_type" | "invalid_value";
}

/** Formats a zod path (`["jobs", 0, "steps"]` → `jobs[0].steps`). */
export function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)
    .join("");
}

/** The parsed value, or the first problem (unknown fields name themselves). */
export function parseFields<T extends z.ZodType>(
  schema: T,
  value: unknown,
): { ok: true; value: z.infer<T> } | { ok: false; problem: FieldProblem } {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0];
    return {
      ok: false,
      problem: {
        path: pathText([...issue.path, key]),
        message: `unknown field ${shown(key)}`,
        code: "unknown_field",
      },
    };
  }
  const path = pathText(issue.path);
  const missing = issue.message === "is required";
  return {
    ok: false,
    problem: {
      path,
      message: path ? `${path} ${issue.message}` : issue.message,
      code: missing
        ? "missing_field"
        : issue.code === "invalid_type"
        ? "invalid_type"
        : "invalid_value",
    },
  };
}

/** A bad field; `field` is its path as the caller names it (JSON key or flag without dashes). */
export class FieldError extends Error {
  override name = "FieldError";
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** A random seed in the PRNG's range, for requests that leave it out. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * Parses an image request, fills the defaults and returns the pipeline's `GenerateRequest`.
 * Throws {@link FieldError} naming the first bad field.
 */
export function resolveRequest(
  input: unknown,
  defaults: RequestDefaults = DEFAULTS,
): GenerateRequest {
  const r = parseFields(ImageRequest, input);
  if (!r.ok) throw new FieldError(r.problem.path, r.problem.message);
  const v = r.value;
  return {
    prompt: v.prompt.trim(),
    negativePrompt: v.negative_prompt ?? "",
    seed: v.seed ?? randomSeed(),
    steps: v.steps ?? defaults.steps,
    guidanceScale: v.guidance_scale ?? defaults.guidanceScale,
    solver: v.solver ?? defaults.solver,
    cache: v.cache ?? defaults.cache,
  };
}
