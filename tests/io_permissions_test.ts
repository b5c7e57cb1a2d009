/**
 * Permission refusals explained (lib/io/permissions.ts): a model folder outside the read grant
 * gives a message that says which grant is missing and how to widen it, not Deno's "run again
 * with --allow-read" that a `deno task start` user cannot act on.
 */
import { assert, assertEquals } from "./_assert.ts";
import { permissionAdvice, START_NET_GRANT } from "../lib/io/permissions.ts";
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

Deno.test("HOST: an invalid one exits 2 at once; one outside the net grant before any model loads", async () => {
  const start = startCommand(await Deno.readTextFile(`${ROOT}/deno.json`));
  const flags = start.split(/\s+/).filter((a) => a.startsWith("--allow-"));
  const run = async (host: string) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `--config=${ROOT}deno.json`, ...flags, "main.ts"],
      cwd: ROOT,
      env: { HOST: host, PORT: "0", THUMBNAILS_FILE: "none" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  };
  const [bad, outside] = await Promise.all([run("999.1.1.1"), run("10.11.12.13")]);
  assertEquals(bad.code, 2, bad.out);
  assertEquals(
    bad.out.trim(),
    "configuration error: HOST must be a host name or an IP address (IPv4 such as 127.0.0.1, " +
      'IPv6 such as ::1), got "999.1.1.1"',
  );
  assertEquals(outside.code, 1, outside.out);
  assert(outside.out.includes("this process may not listen on 10.11.12.13:0"), outside.out);
  assert(outside.out.includes("--allow-net=…,10.11.12.13 main.ts"), outside.out);
  assert(!outside.out.includes("run again with"), outside.out);
  assert(!outside.out.includes("models loaded"), "refused before the models load");
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
  assertEquals(grant("--allow-net"), [...START_NET_GRANT]);
  const net = permissionAdvice(refusal, "net", "10.0.0.1:8000")!;
  for (const h of START_NET_GRANT) assert(net.includes(h), `${h} in: ${net}`);
  assertEquals(permissionAdvice(new Deno.errors.NotFound("x"), "read", "/x"), undefined);
});
