/**
 * The machine a benchmark ran on (moved to lib/io/machine.ts, where the CLIs reach it too).
 *
 * @module
 */
export { machineDescription } from "../lib/io/machine.ts";
