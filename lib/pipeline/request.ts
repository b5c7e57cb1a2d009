/**
 * Resolving a partial image request into a full `GenerateRequest`: defaults, ranges and types,
 * with errors that name the field. Shared by the CLI (fields are flags) and the batch file (fields
 * are JSON keys).
 *
 * @module
 */
import type { GenerateRequest, SolverName } from "./types.ts";
import { SOLVERS } from "../solvers/solver.ts";

/** Solvers by name. */
export { SOLVERS };

/** Limits every caller enforces; prompt lengths count Unicode code points ({@link promptLength}). */
export const LIMITS = {
  promptMaxChars: 1000,
  stepsMin: 1,
  stepsMax: 100,
  guidanceMin: 0,
  guidanceMax: 30,
  seedMax: 0xffffffff,
} as const;

/** A bad field; `field` is the JSON key or flag name (without dashes). */
export class FieldError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

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

/** Loosely typed input: what a JSON body or flag set carries. */
export interface RequestInput {
  prompt?: unknown;
  negative?: unknown;
  seed?: unknown;
  steps?: unknown;
  guidance?: unknown;
  solver?: unknown;
  cache?: unknown;
}

function str(field: string, v: unknown): string {
  if (typeof v !== "string") throw new FieldError(field, `${field} must be a string`);
  return v;
}

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new FieldError(field, `${field} must be an integer`);
  }
  if (v < min || v > max) throw new FieldError(field, `${field} must be in ${min}..${max}`);
  return v;
}

/** A prompt's length in the one unit every caller counts: Unicode code points. */
export function promptLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Throws FieldError when `text` is longer than {@link LIMITS}`.promptMaxChars` code points. */
export function checkPromptLength(field: string, text: string): void {
  const n = promptLength(text);
  if (n > LIMITS.promptMaxChars) {
    throw new FieldError(
      field,
      `${field} must be at most ${LIMITS.promptMaxChars} characters (Unicode code points), got ${n}`,
    );
  }
}

/** A random seed in the PRNG's range, for requests that leave it out. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Fills defaults and checks every field; throws FieldError naming the first bad one. */
export function resolveRequest(
  input: RequestInput,
  defaults: RequestDefaults = DEFAULTS,
): GenerateRequest {
  const prompt = str("prompt", input.prompt).trim();
  if (!prompt) throw new FieldError("prompt", "prompt must not be empty");
  checkPromptLength("prompt", prompt);
  const negative = input.negative === undefined ? "" : str("negative", input.negative);
  checkPromptLength("negative", negative);
  const solver = input.solver === undefined ? defaults.solver : str("solver", input.solver);
  if (!SOLVERS.includes(solver as SolverName)) {
    throw new FieldError("solver", `solver must be one of ${SOLVERS.join(", ")}`);
  }
  const guidance = input.guidance === undefined ? defaults.guidanceScale : input.guidance;
  if (typeof guidance !== "number" || !Number.isFinite(guidance)) {
    throw new FieldError("guidance", "guidance must be a number");
  }
  if (guidance < LIMITS.guidanceMin || guidance > LIMITS.guidanceMax) {
    throw new FieldError(
      "guidance",
      `guidance must be in ${LIMITS.guidanceMin}..${LIMITS.guidanceMax}`,
    );
  }
  const cache = input.cache === undefined ? defaults.cache : str("cache", input.cache).trim();
  if (!cache) throw new FieldError("cache", "cache must not be empty");
  return {
    prompt,
    negativePrompt: negative,
    seed: input.seed === undefined ? randomSeed() : int("seed", input.seed, 0, LIMITS.seedMax),
    steps: input.steps === undefined
      ? defaults.steps
      : int("steps", input.steps, LIMITS.stepsMin, LIMITS.stepsMax),
    guidanceScale: guidance,
    solver: solver as SolverName,
    cache,
  };
}
