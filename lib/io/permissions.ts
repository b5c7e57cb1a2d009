/**
 * Deno's permission refusals, explained for the operator. Deno's own message ("Requires read
 * access to …, run again with the --allow-read flag") cannot be acted on by someone who started
 * the service with `deno task start`, whose grants are fixed in deno.json; this says which grant
 * is missing and how to run with a wider one.
 *
 * @module
 */

/**
 * When `e` is Deno's permission refusal (`Deno.errors.NotCapable`), a message naming what this
 * process may not do to `path` and how to widen the grant; undefined for any other error.
 */
export function permissionAdvice(
  e: unknown,
  access: "read" | "write",
  path: string,
): string | undefined {
  if (!(e instanceof Deno.errors.NotCapable)) return undefined;
  const flag = `--allow-${access}`;
  return `this process may not ${access} ${path}: Deno's ${flag} grant does not include it ` +
    `(\`deno task start\` grants ${
      access === "read"
        ? "read access to ./models, ./schedules, ./lib, ./thumbnails.json, ./thumbnails, " +
          "./web/dist and ./node_modules"
        : "write access to ./thumbnails"
    } only). Put it there, or run main.ts with the start task's flags (deno.json, tasks.start) ` +
    `and ${path} added to ${flag}: deno run … ${flag}=…,${path} main.ts`;
}
