/// <reference lib="dom" />
/**
 * The playground page: fills the speed/quality control from `GET /v1/models`, POSTs a streamed
 * generation, shows each preview as it arrives, then the final image with its plan, timings and a
 * download link. Bundled by web/build.ts into web/dist/playground.js (no npm imports).
 *
 * @module
 */
import {
  authHeaders,
  base64Bytes,
  describeSchedule,
  errorMessage,
  FormError,
  formField,
  type FormValues,
  type ModelEntry,
  type PlanReport,
  planRows,
  requestBody,
} from "./api.ts";
import { readSse } from "./sse.ts";

const TOKEN_KEY = "blockcache.token";

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

const ui = {
  form: $<HTMLFormElement>("form"),
  modelLine: $<HTMLParagraphElement>("model-line"),
  prompt: $<HTMLTextAreaElement>("prompt"),
  negative: $<HTMLInputElement>("negative"),
  seed: $<HTMLInputElement>("seed"),
  steps: $<HTMLInputElement>("steps"),
  solver: $<HTMLSelectElement>("solver"),
  cache: $<HTMLSelectElement>("cache"),
  deadline: $<HTMLInputElement>("deadline"),
  token: $<HTMLInputElement>("token"),
  generate: $<HTMLButtonElement>("generate"),
  cancel: $<HTMLButtonElement>("cancel"),
  status: $<HTMLParagraphElement>("status"),
  preview: $<HTMLImageElement>("preview"),
  previewEmpty: $<HTMLDivElement>("preview-empty"),
  previewStep: $<HTMLSpanElement>("preview-step"),
  result: $<HTMLImageElement>("result"),
  resultEmpty: $<HTMLDivElement>("result-empty"),
  download: $<HTMLAnchorElement>("download"),
  progress: $<HTMLProgressElement>("progress"),
  plan: $<HTMLTableElement>("plan"),
};

const fieldInputs: Record<keyof FormValues, HTMLElement> = {
  prompt: ui.prompt,
  negativePrompt: ui.negative,
  seed: ui.seed,
  steps: ui.steps,
  solver: ui.solver,
  cache: ui.cache,
  deadlineS: ui.deadline,
};

let model: ModelEntry | null = null;
let running: AbortController | null = null;
let resultUrl: string | null = null;

function setStatus(text: string, error = false): void {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", error);
}

function token(): string {
  return ui.token.value;
}

/** Loads the default model and its schedules into the form. */
async function loadModels(): Promise<void> {
  let res: Response;
  try {
    res = await fetch("v1/models", { headers: authHeaders(token()) });
  } catch {
    ui.modelLine.textContent = "the service cannot be reached";
    return;
  }
  if (res.status === 401) {
    ui.modelLine.textContent = "this service needs an API token: enter it below";
    ui.token.classList.add("invalid");
    return;
  }
  if (!res.ok) {
    ui.modelLine.textContent = errorMessage(res.status, res.statusText, await safeJson(res));
    return;
  }
  ui.token.classList.remove("invalid");
  const list = (await res.json()) as { data: ModelEntry[] };
  model = list.data[0] ?? null;
  if (!model) {
    ui.modelLine.textContent = "the service has no model loaded";
    return;
  }
  ui.modelLine.textContent = `model ${model.id}, ${model.sizes.join(", ")}, on ${model.backend}`;
  // Steps stay empty (the model's default, shown as the placeholder) unless the user types some:
  // then a deadline may also be met with fewer steps; typed steps are kept exactly.
  // The placeholder is the number alone: the field is a third of the form's width.
  ui.steps.placeholder = String(model.defaults.steps);
  ui.steps.title = `empty: the model's default, ${model.defaults.steps} steps`;
  ui.solver.value = model.defaults.solver;
  for (const opt of [...ui.cache.options]) {
    if (opt.value !== "auto" && opt.value !== "none") opt.remove();
  }
  for (const s of model.schedules) {
    ui.cache.add(new Option(describeSchedule(s), s.name));
  }
  syncScheduleFields();
}

async function safeJson(res: Response): Promise<unknown> {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/** A named schedule fixes steps and solver: show its values and lock the fields. */
function syncScheduleFields(): void {
  const s = model?.schedules.find((x) => x.name === ui.cache.value);
  if (s) {
    ui.steps.value = String(s.steps);
    ui.solver.value = s.solver;
  } else if (ui.steps.disabled) {
    ui.steps.value = "";
  }
  ui.steps.disabled = ui.solver.disabled = s !== undefined;
}

function formValues(): FormValues {
  return {
    prompt: ui.prompt.value,
    negativePrompt: ui.negative.value,
    seed: ui.seed.value,
    steps: ui.steps.value,
    solver: ui.solver.value,
    cache: ui.cache.value,
    deadlineS: ui.deadline.value,
  };
}

function showPreview(b64: string, step: number, steps: number): void {
  ui.preview.src = `data:image/png;base64,${b64}`;
  ui.preview.hidden = false;
  ui.previewEmpty.hidden = true;
  ui.previewStep.textContent = `(step ${step}/${steps})`;
}

function showResult(b64: string, seed: number, plan: PlanReport): void {
  if (resultUrl) URL.revokeObjectURL(resultUrl);
  resultUrl = URL.createObjectURL(new Blob([base64Bytes(b64)], { type: "image/png" }));
  ui.result.src = resultUrl;
  ui.result.alt = `generated image, seed ${seed}`;
  ui.result.hidden = false;
  ui.resultEmpty.hidden = true;
  ui.download.href = resultUrl;
  ui.download.download = `blockcache-${plan.model}-${seed}.png`;
  ui.download.hidden = false;
  const body = ui.plan.tBodies[0];
  body.replaceChildren(
    ...planRows(plan).map(([k, v]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = k;
      td.textContent = v;
      tr.append(th, td);
      return tr;
    }),
  );
  ui.plan.hidden = false;
}

function setRunning(on: boolean): void {
  ui.generate.disabled = on;
  ui.cancel.disabled = !on;
}

/** Runs one streamed generation and renders its events. */
async function generate(): Promise<void> {
  for (const el of Object.values(fieldInputs)) el.classList.remove("invalid");
  let body: Record<string, unknown>;
  try {
    body = requestBody(formValues());
  } catch (e) {
    if (e instanceof FormError) {
      fieldInputs[e.field].classList.add("invalid");
      setStatus(e.message, true);
      return;
    }
    throw e;
  }
  if (token()) sessionStorage.setItem(TOKEN_KEY, token());
  const ctl = new AbortController();
  running = ctl;
  setRunning(true);
  ui.progress.value = 0;
  ui.previewStep.textContent = "";
  setStatus("sending…");
  const t0 = performance.now();
  try {
    const res = await fetch("v1/images/generations", {
      method: "POST",
      headers: authHeaders(token(), true),
      body: JSON.stringify(body),
      signal: ctl.signal,
    });
    if (!res.ok || !res.body) {
      const err = await safeJson(res);
      if (res.status === 401) ui.token.classList.add("invalid");
      const field = formField((err as { error?: { param?: string } } | null)?.error?.param);
      if (field) fieldInputs[field].classList.add("invalid");
      setStatus(errorMessage(res.status, res.statusText, err), true);
      return;
    }
    if (model === null) void loadModels();
    let finished = false;
    let steps = 0;
    for await (const ev of readSse(res.body)) {
      const data = JSON.parse(ev.data);
      if (ev.event === "queued") {
        setStatus(
          data.position > 0
            ? `queued behind ${data.position} request(s), about ${
              Math.round(data.expected_wait_ms)
            } ms`
            : `starting (predicted ${Math.round(data.predicted_ms)} ms)`,
        );
      } else if (ev.event === "plan") {
        setStatus(
          `running ${data.steps} ${data.solver} steps, cache ${data.schedule ?? "none"} ` +
            `(${data.reason}; predicted ${Math.round(data.predicted_ms)} ms)`,
        );
      } else if (ev.event === "progress") {
        ui.progress.value = data.step / data.steps;
        steps = data.steps;
      } else if (ev.event === "image_generation.partial_image") {
        showPreview(data.b64_json, data.step, steps);
      } else if (ev.event === "image_generation.completed") {
        finished = true;
        showResult(data.b64_json, data.seed, data.plan as PlanReport);
        ui.progress.value = 1;
        setStatus(`done in ${Math.round(performance.now() - t0)} ms (seed ${data.seed})`);
      } else if (ev.event === "error") {
        finished = true;
        setStatus(errorMessage(data.status, "", data), true);
      }
    }
    if (!finished) setStatus("the stream ended before the image was ready", true);
  } catch (e) {
    if (ctl.signal.aborted) setStatus("cancelled");
    else setStatus(`request failed: ${e instanceof Error ? e.message : String(e)}`, true);
  } finally {
    running = null;
    setRunning(false);
  }
}

ui.token.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
ui.cache.addEventListener("change", syncScheduleFields);
ui.token.addEventListener("change", () => void loadModels());
ui.cancel.addEventListener("click", () => running?.abort());
ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (!running) void generate();
});
document.body.dataset.ready = "true";
void loadModels();
