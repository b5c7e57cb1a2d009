/**
 * Permission refusals explained (lib/io/permissions.ts): a model folder outside the read grant
 * gives a message that says which grant is missing and how to widen it, not Deno's "run again
 * with --allow-read" that a `deno task start` user cannot act on.
 */
import { assert, assertEquals } from "./_assert.ts";
import { permissionAdvice } from "../lib/io/permissions.ts";
import { startCommand } from "../tools/compile.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("a model folder outside the read grant: the error says what to do", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perm-" });
  try {
    const folder = new URL("../lib/model/folder.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/load.ts`,
      `import { readModelFolder } from ${JSON.stringify(folder)};
try { await readModelFolder("/srv/models/sd15"); } catch (e) { console.log(e.message); }`,
    );
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `--config=${ROOT}deno.json`, `--allow-read=${dir}`, "load.ts"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout).trim();
    assert(out.startsWith("model folder /srv/models/sd15: model_index.json: "), out);
    assert(out.includes("this process may not read /srv/models/sd15/model_index.json"), out);
    assert(out.includes("--allow-read=…,/srv/models/sd15/model_index.json main.ts"), out);
    assert(!out.includes("run again with"), out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the advice names exactly the start task's read and write grants", async () => {
  const start = startCommand(await Deno.readTextFile(`${ROOT}/deno.json`));
  const grant = (flag: string) =>
    new RegExp(`${flag}=(\\S+)`).exec(start)![1].split(",").map((p) => p.replace(/^\.\//, ""));
  const refusal = new Deno.errors.NotCapable("Requires read access");
  const read = permissionAdvice(refusal, "read", "/x")!;
  for (const p of grant("--allow-read")) assert(read.includes(`./${p}`), `${p} in: ${read}`);
  const write = permissionAdvice(refusal, "write", "/x")!;
  for (const p of grant("--allow-write")) assert(write.includes(`./${p}`), `${p} in: ${write}`);
  assertEquals(permissionAdvice(new Deno.errors.NotFound("x"), "read", "/x"), undefined);
});
