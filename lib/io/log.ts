/**
 * Structured logging for the service: one JSON object per line, so logs stay greppable and never
 * mix user input into the line's structure. Injected, so tests can capture or silence it.
 *
 * @module
 */

/** Fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** The logger the service and jobs take as a dependency. */
export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/**
 * Turns an error into loggable fields: its message and name, and its stack only when `stack` is
 * set (for errors nobody expected, i.e. bugs; an expected failure such as a bad model folder is
 * told by its message alone).
 */
export function errorFields(e: unknown, opts: { stack?: boolean } = {}): LogFields {
  if (e instanceof Error) {
    return { error: e.message, errorName: e.name, ...(opts.stack ? { stack: e.stack } : {}) };
  }
  return { error: String(e) };
}

/** A logger writing JSON lines through `write` (default: console.log / console.error). */
export function jsonLogger(
  write: (level: string, line: string) => void = (level, line) =>
    level === "error" ? console.error(line) : console.log(line),
): Logger {
  const emit = (level: string, msg: string, fields?: LogFields) => {
    let line: string;
    try {
      line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
    } catch {
      line = JSON.stringify({ time: new Date().toISOString(), level, msg });
    }
    write(level, line);
  };
  return {
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** A logger that keeps lines in memory (for tests and the CLI's summary). */
export function memoryLogger(): Logger & {
  lines: { level: string; msg: string; fields?: LogFields }[];
} {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  return {
    lines,
    info: (msg, fields) => lines.push({ level: "info", msg, fields }),
    warn: (msg, fields) => lines.push({ level: "warn", msg, fields }),
    error: (msg, fields) => lines.push({ level: "error", msg, fields }),
  };
}
