/**
 * `deno task manifest <model-folder> [--verify]`: writes (or checks) a model folder's manifest.json.
 *
 * @module
 */
import { verifyManifest, writeManifest } from "../model/manifest.ts";

const args = Deno.args.filter((a) => a !== "--verify");
const unknown = args.find((a) => a.startsWith("-"));
if (unknown || args.length !== 1) {
  console.error(
    unknown ? `unknown flag ${unknown}` : "usage: deno task manifest <model-folder> [--verify]",
  );
  Deno.exit(2);
}
if (Deno.args.includes("--verify")) {
  const problems = await verifyManifest(args[0]);
  for (const p of problems) console.error(p);
  console.log(problems.length ? `${problems.length} problem(s)` : "manifest ok");
  Deno.exit(problems.length ? 1 : 0);
}
const m = await writeManifest(args[0]);
console.log(`${args[0]}/manifest.json: ${m.files.length} files`);
