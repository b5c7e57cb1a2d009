import { assertEquals } from "./_assert.ts";
import { thumbnailsCommand } from "../lib/cli/thumbnails.ts";

// Only the paths that end before a model is loaded (the generator is tested elsewhere).
Deno.test("thumbnails CLI: usage errors exit 2 with a message naming the problem", async () => {
  const errors: string[] = [];
  const orig = console.error;
  console.error = (msg: string) => errors.push(msg);
  try {
    assertEquals(await thumbnailsCommand(["--nope"]), 2);
    assertEquals(await thumbnailsCommand(["--file", "does-not-exist.json"]), 2);
    assertEquals(await thumbnailsCommand(["--job", "no-such-job"]), 2);
    assertEquals(await thumbnailsCommand(["stray"]), 2);
  } finally {
    console.error = orig;
  }
  assertEquals(errors.length, 4);
  assertEquals(
    errors[0].startsWith("thumbnails: unknown flag --nope\nusage: deno task thumbnails"),
    true,
  );
  assertEquals(errors[1].startsWith("thumbnails: does-not-exist.json: cannot read"), true);
  assertEquals(errors[2].includes('no job named "no-such-job"'), true);
});
