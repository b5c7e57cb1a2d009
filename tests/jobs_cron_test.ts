/**
 * lib/jobs/cron.ts against Deno.cron itself: every expression of a fixed corpus (the issue's,
 * Deno's own parser tests, and 400 random ones built from the grammar's pieces) is accepted by
 * the validator exactly when `Deno.cron` accepts it; expressions that parse but never fire are
 * reported, and Deno is shown to crash on them in a child process. The next-run times are Deno's
 * (its `computes_next_matching_times` and saffron cases, ext/cron/cron.rs).
 */
import { assert, assertEquals } from "./_assert.ts";
import { cronError, nextCronTime, parseCron } from "../lib/jobs/cron.ts";

const FIXED = [
  // the issue
  "0 0 * * 0-7",
  "0 0 31 2 *",
  "0 0 30 2 *",
  "0 0 31 4 *",
  // Deno's parses_saffron_compatible_valid_fields / rejects_malformed_input
  "* * * * *",
  "0-30/5 1,2,3 1/3 jan-mar mon-fri",
  "5/10 8-18 * * *",
  "59-0 23-0 31-1 12-1 *",
  "0 0 L * *",
  "0 0 LW * *",
  "0 0 L-30W * *",
  "0 0 1W * *",
  "0 0 * * 7L",
  "0 0 * * MON#2",
  "",
  " * * * * *",
  "* * * * * ",
  "*\n* * * *",
  "* * * *",
  "* * * * * *",
  "m * * * *",
  "*/0 * * * *",
  "*/60 * * * *",
  "* 24 * * *",
  "* * 0 * *",
  "* * 32 * *",
  "* * ? * *",
  "* * * 0 *",
  "* * * 13 *",
  "* * * * 0",
  "* * * * 8",
  "0 0 L-0 * *",
  "0 0 L-31W * *",
  "0 0 * * MON#0",
  "0 0 * * MON#6",
  "0 0 * * MON,TUE#2",
  // common ones and tab separators
  "17 3 * * *",
  "*/15 0-6 1,15 * 2-6",
  "0\t3 * * *",
  "0  3 * * *",
  "00 03 * * *",
  "000 3 * * *",
  "0 0 29 2 *",
  "0 0 L-30W APR *",
  "0 0 31W APR *",
];

/** Random expressions from the grammar's pieces, valid and not (fixed seed). */
function randomCorpus(n: number): string[] {
  const pieces = [
    ["*", "0", "5", "59", "60", "*/15", "*/0", "5/10", "0-30/5", "59-0", "1,2", ",", "00", "7-"],
    ["*", "0", "23", "24", "20-4", "20-4/2", "*/6", "1,13", "a"],
    ["*", "1", "31", "0", "L", "LW", "L-3", "L-3W", "L-31", "15W", "31W", "1-5", "31-1", "?", "W"],
    ["*", "1", "12", "13", "2", "4", "FEB", "apr", "jan-mar", "12-1", "*/2", "0"],
    ["*", "0", "1", "7", "8", "1-7", "0-7", "7-1", "MON", "sun-sat", "MON#2", "FRI#5", "7L", "L"],
  ];
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  return Array.from(
    { length: n },
    () => pieces.map((p) => p[Math.floor(rand() * p.length)]).join(" "),
  );
}

/** Whether `Deno.cron` accepts the expression (registration throws "Invalid cron schedule"). */
function denoAccepts(expr: string, i: number): boolean {
  const ctl = new AbortController();
  try {
    Deno.cron(`parity ${i}`, expr, { signal: ctl.signal }, () => {});
    return true;
  } catch (e) {
    assertEquals((e as Error).message, "Invalid cron schedule", expr);
    return false;
  } finally {
    ctl.abort();
  }
}

Deno.test({
  name: "the validator accepts exactly what Deno.cron accepts",
  sanitizeOps: false,
  sanitizeResources: false,
  fn() {
    const corpus = [...new Set([...FIXED, ...randomCorpus(400)])];
    let accepted = 0, neverFire = 0;
    corpus.forEach((expr, i) => {
      const error = cronError(expr);
      if (error?.startsWith("never fires")) {
        // parses, so Deno registers it, and then crashes: checked in a child process below
        neverFire++;
        return;
      }
      assertEquals(denoAccepts(expr, i), error === null, `${JSON.stringify(expr)}: ${error}`);
      if (error === null) accepted++;
    });
    // the corpus exercises both answers
    assert(accepted > 50 && corpus.length - accepted - neverFire > 50, `${accepted} accepted`);
    assert(neverFire >= 5);
  },
});

Deno.test("expressions that never fire are reported; Deno.cron dies on them", async () => {
  for (const expr of ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *"]) {
    assert(cronError(expr)?.startsWith("never fires"), expr);
  }
  // The process really dies (Deno's scheduler panics), once here for the expression.
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--unstable-cron",
      "Deno.cron('x', '0 0 31 2 *', () => {}); setTimeout(() => console.log('alive'), 3000);",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(child.stderr);
  assert(!child.success && err.includes("panicked"), err.slice(0, 300));
  assertEquals(new TextDecoder().decode(child.stdout), "");
});

Deno.test("messages name the field and Deno's numbering", () => {
  assertEquals(
    cronError("0 0 * * 0-7"),
    'is refused by Deno.cron: day of week field "0-7" is not valid: use 1-7 where 1 is Sunday and 7 Saturday ' +
      "(Deno.cron's numbering: 0 is refused), or SUN-SAT; also L, <day>L, <day>#1-5",
  );
  assertEquals(
    cronError("61 * * * *"),
    'is refused by Deno.cron: minute field "61" is not valid: use 0-59',
  );
  assertEquals(
    cronError("* * * *"),
    "is refused by Deno.cron: needs 5 fields (minute hour day-of-month month day-of-week), got 4",
  );
});

const dt = (y: number, mo: number, d: number, h: number, mi: number) =>
  new Date(Date.UTC(y, mo - 1, d, h, mi));

Deno.test("next run times are Deno's (ext/cron/cron.rs computes_next_matching_times)", () => {
  const cases: [string, Date, Date][] = [
    ["* * * * *", dt(2024, 1, 1, 0, 0), dt(2024, 1, 1, 0, 1)],
    ["*/15 * * * *", dt(2024, 1, 1, 0, 0), dt(2024, 1, 1, 0, 15)],
    ["0 0 29 2 *", dt(2023, 3, 1, 0, 0), dt(2024, 2, 29, 0, 0)],
    ["0 0 29 2 *", dt(2025, 3, 1, 0, 0), dt(2028, 2, 29, 0, 0)],
    ["0 0 29 2 *", dt(2096, 3, 1, 0, 0), dt(2104, 2, 29, 0, 0)],
    ["0 0 * 2 FRI#5", dt(2020, 1, 1, 0, 0), dt(2036, 2, 29, 0, 0)],
    ["0 0 * JAN MON", dt(2023, 12, 31, 0, 0), dt(2024, 1, 1, 0, 0)],
    ["0 0 * * 1", dt(2024, 1, 6, 0, 0), dt(2024, 1, 7, 0, 0)], // 1 = Sunday
    ["0 0 * * 7", dt(2024, 1, 5, 0, 0), dt(2024, 1, 6, 0, 0)], // 7 = Saturday
    ["0 0 13 * TUE", dt(2024, 5, 13, 0, 0), dt(2024, 5, 14, 0, 0)],
    ["59-0 23-0 31-1 12-1 *", dt(2020, 12, 30, 23, 58), dt(2020, 12, 30, 23, 59)],
    ["0 0 L FEB *", dt(2024, 1, 1, 0, 0), dt(2024, 2, 29, 0, 0)],
    ["0 0 LW MAY *", dt(2025, 1, 1, 0, 0), dt(2025, 5, 30, 0, 0)],
    ["0 0 1W MAY *", dt(2021, 1, 1, 0, 0), dt(2021, 5, 3, 0, 0)],
    ["0 0 * * 7L", dt(2020, 2, 1, 0, 0), dt(2020, 2, 29, 0, 0)],
    ["0 20-4/2 * * *", dt(2020, 1, 1, 0, 30), dt(2020, 1, 1, 2, 0)], // hours 20, 22, 0, 2, 4
    ["0 20-4 * * *", dt(2020, 1, 1, 5, 0), dt(2020, 1, 1, 19, 0)], // saffron: 19 too
  ];
  for (const [expr, after, expected] of cases) {
    assertEquals(nextCronTime(expr, after)?.toISOString(), expected.toISOString(), expr);
  }
  assertEquals(nextCronTime("0 0 L-30W APR *", dt(2021, 4, 1, 0, 0)), undefined);
  assertEquals(nextCronTime(parseCron("0 0 31 FEB *"), dt(2024, 1, 1, 0, 0)), undefined);
});
