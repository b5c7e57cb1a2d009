/** The playground's request building and API helpers (web/src/api.ts). */
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  authHeaders,
  base64Bytes,
  describeSchedule,
  errorMessage,
  FormError,
  type FormValues,
  PARTIAL_IMAGES,
  type PlanReport,
  planRows,
  requestBody,
} from "../web/src/api.ts";
import { validateGeneration } from "../lib/server/validate.ts";
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

Deno.test("api: every body the form builds passes the service's validation", () => {
  for (
    const v of [
      FORM,
      { ...FORM, cache: "none", seed: "4294967295", deadlineS: "600" },
      { ...FORM, cache: "dpm-20-fast", steps: "3", solver: "euler" },
    ]
  ) {
    const p = validateGeneration(requestBody(v), [MODEL], "openai");
    assert(p.stream, "streamed");
    assertEquals(p.partialImages, PARTIAL_IMAGES);
  }
});

Deno.test("api: bad form values name their field", () => {
  const field = (v: Partial<FormValues>) => {
    try {
      requestBody({ ...FORM, ...v });
    } catch (e) {
      if (e instanceof FormError) return e.field;
      throw e;
    }
    return null;
  };
  assertEquals(field({ prompt: "   " }), "prompt");
  assertEquals(field({ seed: "-1" }), "seed");
  assertEquals(field({ seed: "4294967296" }), "seed");
  assertEquals(field({ steps: "0" }), "steps");
  assertEquals(field({ steps: "2.5" }), "steps");
  assertEquals(field({ deadlineS: "0" }), "deadlineS");
  assertEquals(field({ deadlineS: "abc" }), "deadlineS");
  assertThrows(() => requestBody({ ...FORM, steps: "101" }), "between 1 and 100");
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
    steps: 20,
    solver: "dpm",
    schedule: null,
    cache_requested: "auto",
    reason: "fits",
    seed: 7,
    guidance_scale: 5,
    backend: "wasm",
    deadline_ms: 60000,
    predicted_ms: 812.4,
    queue_wait_ms: 0,
    elapsed_ms: 790.2,
    skipped_fraction: 0,
    cache_bytes: 0,
    timings: [{ text_encoder_ms: 10, unet_ms: 700, decoder_ms: 50, total_ms: 770.6 }],
  };
  const rows = Object.fromEntries(planRows(plan));
  assertEquals(rows["cache schedule"], "none");
  assertEquals(rows["predicted"], "812 ms");
  assertEquals(rows["generation total"], "771 ms");
  assertEquals(planRows({ ...plan, timings: [] }).length, planRows(plan).length - 4);
});
