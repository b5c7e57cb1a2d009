/**
 * Service configuration from environment variables, validated once at start-up with messages that
 * name the variable. The rest of the service receives a plain `ServerConfig`, so tests build one
 * with `defaultConfig({...})` instead of touching the environment.
 *
 * @module
 */

import { BACKEND_CHOICES, type BackendChoice } from "../runtime/backend.ts";

export type { BackendChoice };

/**
 * How the service ranks the candidates of `cache: "auto"` (lib/planning/planner.ts): `fit` (the
 * default) by measured FD alone, so the plan with the lowest measured FD that fits the deadline
 * wins, cached or not; `prefer` ranks cached plans before uncached ones.
 */
export type AutoCachePolicy = "fit" | "prefer";

/** Everything the service reads from its environment. */
export interface ServerConfig {
  port: number;
  /** The interface to listen on: a host name, or an IPv4 or IPv6 address (without brackets). */
  host: string;
  /** Bearer token every route but `/healthz` requires; null = no auth. */
  apiToken: string | null;
  /** Most requests waiting behind the running one; more get 429. */
  queueMax: number;
  /** Deadline for requests that carry none. */
  defaultDeadlineMs: number;
  /** Largest deadline a request may ask for. */
  maxDeadlineMs: number;
  /** Largest request body; larger gets 413. */
  maxBodyBytes: number;
  modelsDir: string;
  backend: BackendChoice;
  /** The cron jobs file; null = no cron jobs. */
  thumbnailsFile: string | null;
  autoCache: AutoCachePolicy;
  /** How long shutdown lets the running generation finish before aborting it. */
  shutdownGraceMs: number;
  /** Origins allowed to call the API from a browser (CORS); `*` = any. */
  corsOrigins: string | string[];
  /** Generation workers: a count, or `auto` (per core and memory on wasm, 1 on WebGPU). */
  workers: number | "auto";
}

/** The environment variables the service reads (pass them to `--allow-env=`). */
export const ENV_VARS = [
  "PORT",
  "HOST",
  "API_TOKEN",
  "QUEUE_MAX",
  "DEFAULT_DEADLINE_MS",
  "MODELS_DIR",
  "BACKEND",
  "THUMBNAILS_FILE",
  "AUTO_CACHE",
  "CORS_ORIGINS",
  "WORKERS",
  "SHUTDOWN_GRACE_MS",
] as const;

/** Upper bound of any deadline (10 minutes). */
export const MAX_DEADLINE_MS = 600_000;

/** A bad configuration value; `message` names the variable and is fit to print as is. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The configuration with every default, optionally overridden (for tests and embedding). */
export function defaultConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    port: 8000,
    host: "0.0.0.0",
    apiToken: null,
    queueMax: 8,
    defaultDeadlineMs: 60_000,
    maxDeadlineMs: MAX_DEADLINE_MS,
    maxBodyBytes: 64 * 1024,
    modelsDir: "models",
    backend: "auto",
    thumbnailsFile: "thumbnails.json",
    autoCache: "fit",
    shutdownGraceMs: 10_000,
    corsOrigins: "*",
    workers: "auto",
    ...overrides,
  };
}

function intVar(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) {
    throw new ConfigError(
      `${name} must be a ${min > 0 ? "positive" : "non-negative"} integer (${min} to ${max}), ` +
        `got "${raw}"`,
    );
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  }
  return n;
}

/**
 * Whether `host` is something to listen on: an IPv4 address (four numbers 0..255), an IPv6
 * address (bare or in brackets), or a DNS host name (RFC 1123 labels; a name whose last label is
 * all digits is a mistyped IPv4 address, as in the WHATWG URL parser).
 */
export function isHostOrAddress(host: string): boolean {
  if (host.length > 253) return false;
  if (/^[\d.]+$/.test(host)) {
    const parts = host.split(".");
    return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && +p <= 255);
  }
  if (host.includes(":")) {
    const bare = host.replace(/^\[(.*)\]$/, "$1");
    if (!/^[0-9A-Fa-f:.]+$/.test(bare)) return false;
    try {
      return new URL(`http://[${bare}]/`).hostname !== "";
    } catch {
      return false;
    }
  }
  const labels = host.split(".");
  return labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l)) &&
    !/^\d+$/.test(labels.at(-1)!);
}

function oneOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

/**
 * Reads and validates the configuration. `env` looks a variable up (e.g. `Deno.env.get`); unset and
 * empty variables take their defaults. Throws `ConfigError` naming the first bad variable.
 */
export function loadConfig(env: (name: string) => string | undefined): ServerConfig {
  const get = (name: (typeof ENV_VARS)[number]) => {
    const v = env(name)?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const c = defaultConfig();
  const port = get("PORT");
  if (port !== undefined) c.port = intVar("PORT", port, 0, 65535);
  const host = get("HOST");
  if (host !== undefined) {
    if (!isHostOrAddress(host)) {
      throw new ConfigError(
        `HOST must be a host name or an IP address (IPv4 such as 127.0.0.1, IPv6 such as ::1), ` +
          `got "${host.slice(0, 100)}"`,
      );
    }
    c.host = host.replace(/^\[(.*)\]$/, "$1"); // Deno.serve takes IPv6 without brackets
  }
  const token = env("API_TOKEN");
  if (token !== undefined && token !== "") {
    if (/\s/.test(token)) throw new ConfigError("API_TOKEN must not contain whitespace");
    if (token.length < 16) throw new ConfigError("API_TOKEN must be at least 16 characters long");
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw new ConfigError("API_TOKEN must be printable ASCII");
    }
    c.apiToken = token;
  }
  const queueMax = get("QUEUE_MAX");
  if (queueMax !== undefined) c.queueMax = intVar("QUEUE_MAX", queueMax, 0, 10_000);
  const deadline = get("DEFAULT_DEADLINE_MS");
  if (deadline !== undefined) {
    c.defaultDeadlineMs = intVar("DEFAULT_DEADLINE_MS", deadline, 1, MAX_DEADLINE_MS);
  }
  const models = get("MODELS_DIR");
  if (models !== undefined) c.modelsDir = models;
  const backend = get("BACKEND");
  if (backend !== undefined) c.backend = oneOf("BACKEND", backend, BACKEND_CHOICES);
  const thumbs = get("THUMBNAILS_FILE");
  if (thumbs !== undefined) c.thumbnailsFile = thumbs === "none" ? null : thumbs;
  const autoCache = get("AUTO_CACHE");
  if (autoCache !== undefined) c.autoCache = oneOf("AUTO_CACHE", autoCache, ["fit", "prefer"]);
  const cors = get("CORS_ORIGINS");
  if (cors !== undefined) {
    const list = cors.split(",").map((o) => o.trim()).filter((o) => o);
    for (const o of list) {
      if (o !== "*" && !/^https?:\/\/[^/\s]+$/.test(o)) {
        throw new ConfigError(
          `CORS_ORIGINS must be * or a comma-separated list of origins such as https://app.example.com, got "${o}"`,
        );
      }
    }
    c.corsOrigins = list.includes("*") ? "*" : list;
  }
  const grace = get("SHUTDOWN_GRACE_MS");
  if (grace !== undefined) {
    c.shutdownGraceMs = intVar("SHUTDOWN_GRACE_MS", grace, 0, MAX_DEADLINE_MS);
  }
  const workers = get("WORKERS");
  if (workers !== undefined) {
    c.workers = workers === "auto" ? "auto" : intVar("WORKERS", workers, 1, 64);
  }
  return c;
}
