/**
 * Deno's permission refusals, explained for the operator. Deno's own message ("Requires read
 * access to …, run again with the --allow-read flag") cannot be acted on by someone who started
 * the service with `deno task start`, whose grants are fixed in deno.json; this says which grant
 * is missing and how to run with a wider one.
 *
 * @module
 */

/** The hosts `deno task start` may listen on (its `--allow-net`, deno.json). */
export const START_NET_GRANT = ["0.0.0.0", "127.0.0.1", "localhost"] as const;

/** `host:port` as Deno's net permissions write it (an IPv6 address in brackets). */
export function listenAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The advice for an address ({@link listenAddress}) this process may not listen on. */
function netAdvice(address: string): string {
  const host = address.replace(/:\d+$/, "");
  return `this process may not listen on ${address}: Deno's --allow-net grant does not include ` +
    `${host} (\`deno task start\` grants ${START_NET_GRANT.join(", ")} only). Set HOST to one ` +
    `of those, or run main.ts with the start task's flags (deno.json, tasks.start) and ${host} ` +
    `added to --allow-net: deno run … --allow-net=…,${host} main.ts`;
}

/**
 * When `e` is Deno's permission refusal (`Deno.errors.NotCapable`), a message naming what this
 * process may not do to `path` (for `net`: the {@link listenAddress} it would listen on) and how to widen
 * the grant; undefined for any other error.
 */
export function permissionAdvice(
  e: unknown,
  access: "read" | "write" | "net",
  path: string,
): string | undefined {
  if (!(e instanceof Deno.errors.NotCapable)) return undefined;
  if (access === "net") return netAdvice(path);
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

/**
 * Before anything slow (loading models): the advice of {@link permissionAdvice} when listening on
 * `host`:`port` will be refused — the grant does not include it and Deno cannot ask (no terminal
 * to prompt on); undefined when it is granted or Deno will prompt for it.
 */
export function listenRefusal(host: string, port: number): string | undefined {
  const address = listenAddress(host, port);
  const { state } = Deno.permissions.querySync({ name: "net", host: address });
  if (state === "granted") return undefined;
  const canPrompt = Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
  return state === "denied" || !canPrompt ? netAdvice(address) : undefined;
}
