/**
 * deno.json as a new operator meets it: the first start on a fresh node_modules shows no
 * "Ignored build scripts … protobufjs" box (onnxruntime-web depends on protobufjs, whose
 * postinstall script only prints a version-scheme warning, so deno.json denies it explicitly).
 * The same setup without the setting shows the box, so the check can fail.
 */
import { assert } from "./_assert.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Stderr of a first run (fresh node_modules) of a script importing onnxruntime-web. */
async function firstRun(config: Record<string, unknown>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fresh-checkout-" });
  try {
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(config));
    await Deno.copyFile(`${ROOT}/deno.lock`, `${dir}/deno.lock`);
    await Deno.writeTextFile(`${dir}/m.ts`, 'import "onnxruntime-web/wasm";\nconsole.log("ok");\n');
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", "m.ts"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    assert(r.success && new TextDecoder().decode(r.stdout) === "ok\n", err);
    return err;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a fresh checkout's first start shows no 'Ignored build scripts' box", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const err = await firstRun(config);
  assert(!err.includes("Ignored build scripts"), err);
  delete config.allowScripts;
  assert((await firstRun(config)).includes("Ignored build scripts"), "the control shows the box");
});
