/**
 * What the playground knows of the service's HTTP API (the shapes lib/server/app.ts answers) and
 * the pure helpers that turn the form into a request. No DOM here, so it is unit-tested under Deno.
 *
 * @module
 */
import type { ImagesApiRequestInput } from "../../lib/pipeline/request.ts";
import type { PlanReport } from "../../lib/server/job.ts";

/** A shipped cache schedule, as `GET /v1/models` lists it. */
export interface ScheduleEntry {
  name: string;
  solver: string;
  steps: number;
  skipped_fraction: number;
  fd?: number;
}

/** A model, as `GET /v1/models` lists it. */
export interface ModelEntry {
  id: string;
  sizes: string[];
  backend: string;
  defaults: { steps: number; solver: string; guidance_scale: number };
  schedules: ScheduleEntry[];
}

/** The plan report of a finished request (`plan` of each `image_generation.completed` event). */
export type { PlanReport };

/** The service's error body. */
export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Previews asked for per image while streaming. */
export const PARTIAL_IMAGES = 8;

/** The form as the user filled it in (strings, as inputs give them). */
export interface FormValues {
  prompt: string;
  negativePrompt: string;
  /** Empty: the service picks a random seed. */
  seed: string;
  steps: string;
  solver: string;
  /** `auto`, `none` or a schedule name. */
  cache: string;
  /** Seconds; empty: the service's default deadline. */
  deadlineS: string;
}

/** A form value the service would refuse, with the field to point the user at. */
export class FormError extends Error {
  constructor(readonly field: keyof FormValues, message: string) {
    super(message);
    this.name = "FormError";
  }
}

/** A number when `raw` reads as one, else the text itself (the service names what is wrong). */
function numberOrText(raw: string): number | string {
  const v = raw.trim();
  return v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
}

/**
 * The JSON body of a streamed `POST /v1/images/generations` for the form. A named schedule fixes
 * its own steps and solver, so those are sent only with `auto` or `none`. Ranges are the service's
 * to check (its 400 names the field, which the page marks); only an empty prompt is caught here.
 * Throws `FormError`.
 */
export function requestBody(v: FormValues): ImagesApiRequestInput {
  const prompt = v.prompt.trim();
  if (prompt === "") throw new FormError("prompt", "type a prompt first");
  const body: Record<string, unknown> = {
    prompt,
    stream: true,
    partial_images: PARTIAL_IMAGES,
    cache: v.cache || "auto",
  };
  if (v.negativePrompt.trim() !== "") body.negative_prompt = v.negativePrompt.trim();
  if (v.seed.trim() !== "") body.seed = numberOrText(v.seed);
  if (body.cache === "auto" || body.cache === "none") {
    if (v.steps.trim() !== "") body.steps = numberOrText(v.steps);
    if (v.solver !== "") body.solver = v.solver;
  }
  if (v.deadlineS.trim() !== "") {
    const s = numberOrText(v.deadlineS);
    body.deadline_ms = typeof s === "number" ? Math.round(s * 1000) : s;
  }
  return body as ImagesApiRequestInput;
}

/** The form field a service error's `param` names, if any. */
export function formField(param: string | null | undefined): keyof FormValues | undefined {
  const fields: Record<string, keyof FormValues> = {
    prompt: "prompt",
    negative_prompt: "negativePrompt",
    seed: "seed",
    steps: "steps",
    solver: "solver",
    cache: "cache",
    deadline_ms: "deadlineS",
  };
  return param ? fields[param] : undefined;
}

/** Request headers, with the bearer token when one is given. */
export function authHeaders(token: string, json = false): Record<string, string> {
  const h: Record<string, string> = {};
  if (json) h["content-type"] = "application/json";
  if (token.trim() !== "") h.authorization = `Bearer ${token.trim()}`;
  return h;
}

/** One line describing a schedule for the speed/quality select. */
export function describeSchedule(s: ScheduleEntry): string {
  const skip = `skips ${Math.round(s.skipped_fraction * 100)}%`;
  const fd = s.fd === undefined ? "" : `, FD ${s.fd.toPrecision(2)}`;
  return `${s.name} (${s.solver}, ${s.steps} steps, ${skip}${fd})`;
}

/** The error message of a non-2xx answer (JSON error body, or the status line). */
export function errorMessage(status: number, statusText: string, body: unknown): string {
  const e = (body as Partial<ApiErrorBody> | null)?.error;
  if (e && typeof e.message === "string") {
    return `${status}: ${e.message}${e.param ? ` (${e.param})` : ""}`;
  }
  return `${status} ${statusText}`.trim();
}

/** Decodes base64 to bytes (atob is in browsers and Deno). */
export function base64Bytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Rows of the plan table: label and value, in reading order. */
export function planRows(p: PlanReport): [string, string][] {
  const ms = (x: number) => `${Math.round(x)} ms`;
  const t = p.timings[0];
  const rows: [string, string][] = [
    ["model", `${p.model} (${p.size}, ${p.backend})`],
    ["seed", String(p.seed)],
    ["steps / solver", `${p.steps} / ${p.solver}`],
    ["cache schedule", p.schedule ?? "none"],
    ["skipped blocks", `${Math.round(p.skipped_fraction * 100)}%`],
    ["why this plan", p.reason],
    [
      "measured quality",
      p.quality
        ? `FD ${p.quality.fd.toFixed(2)}, accuracy ${Math.round(p.quality.accuracy * 100)}%`
        : "not measured",
    ],
    ["deadline", ms(p.deadline_ms)],
    ["predicted", ms(p.predicted_ms)],
    ["queue wait", ms(p.queue_wait_ms)],
    ["elapsed (server)", ms(p.elapsed_ms)],
  ];
  if (t) {
    rows.push(
      ["text encoder", ms(t.text_encoder_ms)],
      ["UNet", ms(t.unet_ms)],
      ["decoder", ms(t.decoder_ms)],
      ["generation total", ms(t.total_ms)],
    );
  }
  return rows;
}
