/**
 * The one error type a client sees. It is Hono's `HTTPException` with the OpenAI error body
 * (`{error: {message, type, param, code}}`), so a route throws it and the app answers it in one
 * place ({@link errorResponse}); nothing else, no stack trace and no internal message, reaches a
 * client.
 *
 * @module
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "../io/log.ts";

/** OpenAI-style error classes. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "rate_limit_error"
  | "deadline_error"
  | "server_error";

/** The fields of an {@link ApiError} beyond its status. */
export interface ApiErrorOptions {
  message: string;
  /** The request field, header or flag at fault; null when none. */
  param?: string | null;
  type?: ErrorType;
  /** A stable machine-readable code, e.g. `queue_full`. */
  code?: string | null;
  /** Extra response headers (`Retry-After`, `Allow`, `WWW-Authenticate`). */
  headers?: Record<string, string>;
}

/** The OpenAI error body. */
export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

/** An error answered to the client as `status` with the OpenAI error body. */
export class ApiError extends HTTPException {
  override name = "ApiError";
  readonly param: string | null;
  readonly type: ErrorType;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(status: ContentfulStatusCode, opts: ApiErrorOptions) {
    super(status, { message: opts.message });
    this.param = opts.param ?? null;
    this.type = opts.type ?? "invalid_request_error";
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  /** The JSON body. */
  toJSON(): ErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }

  /** The response Hono sends for it. */
  override getResponse(): Response {
    return new Response(JSON.stringify(this.toJSON()), {
      status: this.status,
      headers: { "content-type": "application/json; charset=utf-8", ...this.headers },
    });
  }
}

/** A 400 naming `param`. */
export function badField(param: string, message: string, code = "invalid_value"): ApiError {
  return new ApiError(400, { message, param, code });
}

/** The 503 of a service that is shutting down (a new request, or a job the queue dropped). */
export function shuttingDown(): ApiError {
  return new ApiError(503, {
    message: "the service is shutting down",
    type: "server_error",
    code: "shutting_down",
    headers: { "retry-after": "5" },
  });
}

/**
 * The answer to any error a route or middleware throws: an {@link ApiError} as itself; Hono's
 * own `HTTPException`s (auth, body limit) with their status in the OpenAI body; anything else as
 * a 500 that says nothing of its cause (which `onUnexpected` gets, for the log).
 */
export function errorResponse(err: unknown, onUnexpected: (e: unknown) => void): Response {
  if (err instanceof ApiError) return err.getResponse();
  if (err instanceof HTTPException) {
    const res = err.getResponse();
    // a middleware that already answered in the OpenAI shape (bearer auth, via our messages)
    if (err.res && res.headers.get("content-type")?.startsWith("application/json")) return res;
    const api = new ApiError(err.status as ContentfulStatusCode, {
      message: err.message || res.statusText || `HTTP ${err.status}`,
      type: err.status === 401 ? "authentication_error" : "invalid_request_error",
    }).getResponse();
    res.headers.forEach((v, k) => {
      if (k !== "content-type" && k !== "content-length") api.headers.set(k, v);
    });
    return api;
  }
  onUnexpected(err);
  return new ApiError(500, {
    message: "internal server error",
    type: "server_error",
    code: "internal_error",
  }).getResponse();
}

/** What {@link logFailedRequest} states of a request that did not succeed. */
export interface FailedRequest {
  method: string;
  path: string;
  /** The HTTP status answered (or, in a stream, the status of the `error` event); 499 = cancelled. */
  status: number;
  /** The error body's `code` (`queue_full`, `deadline_exceeded`, …), null when it has none. */
  code: string | null;
  /** The error body's `message`. */
  reason: string;
  /** Milliseconds from arrival to the answer. */
  elapsedMs: number;
  /** The failure ended a Server-Sent Events stream (whose HTTP status was 200). */
  stream?: boolean;
}

/**
 * One concise log line per request that failed, was refused or was cancelled (the successes'
 * counterpart of the `generated` line): `request cancelled` (499, info), `request refused` (other
 * 4xx, and 503/504: the service's limits, warn) or `request failed` (other 5xx, error).
 */
export function logFailedRequest(log: Logger, f: FailedRequest): void {
  const fields = {
    method: f.method,
    path: f.path.slice(0, 200),
    status: f.status,
    code: f.code,
    reason: f.reason.slice(0, 300),
    elapsedMs: Math.round(f.elapsedMs * 10) / 10,
    ...(f.stream ? { stream: true } : {}),
  };
  if (f.status === 499) log.info("request cancelled", fields);
  else if (f.status < 500 || f.status === 503 || f.status === 504) {
    log.warn("request refused", fields);
  } else log.error("request failed", fields);
}

/** The `code` and `message` of an OpenAI error body (null code and the status text otherwise). */
export async function errorSummary(
  res: Response,
): Promise<{ code: string | null; reason: string }> {
  try {
    const body = await res.clone().json() as Partial<ErrorBody>;
    if (typeof body.error?.message === "string") {
      return { code: body.error.code ?? null, reason: body.error.message };
    }
  } catch {
    // not JSON (a HEAD answer has no body): the status says it
  }
  return { code: null, reason: res.statusText || `HTTP ${res.status}` };
}
