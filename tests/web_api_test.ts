/** The playground's request building and API helpers (web/src/api.ts). */
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  authHeaders,
  base64Bytes,
  describeSchedule,
  errorMessage,
  formField,
  type FormValues,
  PARTIAL_IMAGES,
  type PlanReport,
  planRows,
  requestBody,
} from "../web/src/api.ts";
import { validateGeneration } from "../lib/server/validate.ts";
import type { ApiError } from "../lib/server/errors.ts";
import { DEFAULT_MODEL_DIR } from "./support/generator.ts";
import { loadTokenizer } from "../lib/model/tokenizer.ts";
import type { ModelInfo } from "../lib/pipeline/types.ts";

const FORM: FormValues = {
  prompt: "  a red apple ",
  negativePrompt: "",
  seed: "",
  steps: "12",
  solver: "ddim",
  cache: "auto",
  deadlineS: "",
};

const MODEL: ModelInfo = {
  name: "m",
  width: 64,
  height: 64,
  backend: "wasm",
  defaults: { steps: 20, solver: "dpm", guidanceScale: 5 },
  schedules: [{ name: "dpm-20-fast", solver: "dpm", steps: 20, skippedFraction: 0.5 }],
};

Deno.test("api: form → streamed request body", () => {
  assertEquals(requestBody(FORM), {
    prompt: "a red apple",
    stream: true,
    partial_images: PARTIAL_IMAGES,
    cache: "auto",
    steps: 12,
    solver: "ddim",
  });
  assertEquals(
    requestBody({ ...FORM, seed: "42", negativePrompt: " blurry ", deadlineS: "2.5" }),
    {
      prompt: "a red apple",
      stream: true,
      partial_images: PARTIAL_IMAGES,
      cache: "auto",
      negative_prompt: "blurry",
      seed: 42,
      steps: 12,
      solver: "ddim",
      deadline_ms: 2500,
    },
  );
});

Deno.test("api: a named schedule sends neither steps nor solver (it fixes them)", () => {
  const body = requestBody({ ...FORM, cache: "dpm-20-fast" });
  assertEquals([body.cache, body.steps, body.solver], ["dpm-20-fast", undefined, undefined]);
});

Deno.test("api: every body the form builds passes the service's validation", async () => {
  const tokenizer = await loadTokenizer(`${DEFAULT_MODEL_DIR}/tokenizer`);
  for (
    const v of [
      FORM,
      { ...FORM, cache: "none", seed: "4294967295", deadlineS: "600" },
      { ...FORM, cache: "dpm-20-fast", steps: "3", solver: "euler" },
    ]
  ) {
    const body = requestBody(v) as Record<string, unknown>;
    const p = validateGeneration(body, [MODEL], "openai", () => tokenizer);
    assert(p.stream, "streamed");
    assertEquals(p.partialImages, PARTIAL_IMAGES);
  }
});

Deno.test("api: bad values are the service's to name; the page marks the field it names", async () => {
  const tokenizer = await loadTokenizer(`${DEFAULT_MODEL_DIR}/tokenizer`);
  const param = (v: Partial<FormValues>) => {
    const body = requestBody({ ...FORM, ...v }) as Record<string, unknown>;
    try {
      validateGeneration(body, [MODEL], "openai", () => tokenizer);
    } catch (e) {
      return formField((e as ApiError).param);
    }
    return null;
  };
  assertEquals(param({ seed: "-1" }), "seed");
  assertEquals(param({ seed: "4294967296" }), "seed");
  assertEquals(param({ steps: "0" }), "steps");
  assertEquals(param({ steps: "2.5" }), "steps");
  assertEquals(param({ steps: "abc" }), "steps");
  assertEquals(param({ deadlineS: "abc" }), "deadlineS");
  assertEquals(param({ deadlineS: "601" }), "deadlineS");
  assertEquals(param({ prompt: "🍎" }), "prompt");
  assertEquals(param({ steps: "12" }), null);
  // only an empty prompt is caught before sending
  assertThrows(() => requestBody({ ...FORM, prompt: "   " }), "type a prompt first");
});

Deno.test("api: headers, schedule labels, error messages, base64", () => {
  assertEquals(authHeaders(""), {});
  assertEquals(authHeaders(" tok ", true), {
    "content-type": "application/json",
    authorization: "Bearer tok",
  });
  assertEquals(
    describeSchedule({ name: "s", solver: "dpm", steps: 20, skipped_fraction: 0.456, fd: 0.0123 }),
    "s (dpm, 20 steps, skips 46%, FD 0.012)",
  );
  assertEquals(
    errorMessage(400, "Bad Request", {
      error: { message: "steps must be an integer", type: "x", param: "steps", code: null },
    }),
    "400: steps must be an integer (steps)",
  );
  assertEquals(errorMessage(502, "Bad Gateway", null), "502 Bad Gateway");
  assertEquals([...base64Bytes("iVBORw0KGgo=")], [137, 80, 78, 71, 13, 10, 26, 10]);
});

Deno.test("api: plan rows show the plan and the timings", () => {
  const plan: PlanReport = {
    model: "m",
    size: "64x64",
    n: 1,
    steps: 20,
    solver: "dpm",
    schedule: null,
    cache_requested: "auto",
    reason: "best quality that fits",
    why: "dpm-10-none (FD 5.150, KID 0.100): the best measured quality of 44 plans",
    quality: { fd: 5.15, kid: 0.1, accuracy: 0.861 },
    headroom: 1.15,
    seed: 7,
    seeds: [7],
    guidance_scale: 5,
    backend: "wasm",
    deadline_ms: 60000,
    deadline_source: "default",
    predicted_ms: 812.4,
    queue_wait_ms: 0,
    elapsed_ms: 790.2,
    skipped_fraction: 0,
    cache_bytes: 0,
    timings: [{ text_encoder_ms: 10, unet_ms: 700, decoder_ms: 50, total_ms: 770.6 }],
    prompt: { tokens: 3, max_tokens: 14, truncated: false, ignored_text: "" },
  };
  const rows = Object.fromEntries(planRows(plan));
  assertEquals(rows["cache schedule"], "none");
  assertEquals(rows["predicted"], "812 ms");
  assertEquals(rows["measured quality"], "FD 5.15, accuracy 86%");
  assertEquals(
    Object.fromEntries(planRows({ ...plan, quality: null }))["measured quality"],
    "not measured",
  );
  assertEquals(rows["generation total"], "771 ms");
  assertEquals(planRows({ ...plan, timings: [] }).length, planRows(plan).length - 4);
});
