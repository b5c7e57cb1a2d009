/**
 * The machine a benchmark or measurement ran on, stated with every figure: CPU model and core count.
 *
 * @module
 */

/** e.g. "Intel(R) Xeon(R) ... x 2 vCPUs, Deno 2.9.6". */
export function machineDescription(): string {
  let cpu = "unknown CPU";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = info.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? cpu;
  } catch { /* not Linux */ }
  return `${cpu} x ${navigator.hardwareConcurrency} vCPUs, Deno ${Deno.version.deno}`;
}
