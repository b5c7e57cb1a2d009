/**
 * Console helpers shared by the tests that run CLI entry points in process.
 *
 * @module
 */

/**
 * Runs a CLI entry point with console output silenced; returns its exit code. On a non-zero code
 * the silenced lines go to `console.warn`, so a failing step shows why.
 */
export async function quiet(run: () => Promise<number>): Promise<number> {
  const [log, error] = [console.log, console.error];
  const lines: string[] = [];
  console.log = console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const code = await run();
    if (code !== 0) console.warn(lines.join("\n"));
    return code;
  } finally {
    [console.log, console.error] = [log, error];
  }
}
