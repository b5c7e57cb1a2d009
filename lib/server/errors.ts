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
