import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { ConfigError, defaultConfig, ENV_VARS, loadConfig } from "../lib/server/config.ts";
import { Metrics } from "../lib/server/metrics.ts";

const env = (vars: Record<string, string>) => (k: string) => vars[k];

Deno.test("loadConfig: defaults when unset, values when set", () => {
  assertEquals(loadConfig(env({})), defaultConfig());
  const c = loadConfig(env({
    PORT: "9000",
    HOST: "127.0.0.1",
    API_TOKEN: "abcdefghijklmnopqrstuvwxyz",
    QUEUE_MAX: "3",
    DEFAULT_DEADLINE_MS: "2500",
    MODELS_DIR: "m",
    BACKEND: "wasm",
    THUMBNAILS_FILE: "none",
    AUTO_CACHE: "prefer",
  }));
  assertEquals(
    [c.port, c.host, c.apiToken, c.queueMax, c.defaultDeadlineMs, c.modelsDir, c.backend],
    [9000, "127.0.0.1", "abcdefghijklmnopqrstuvwxyz", 3, 2500, "m", "wasm"],
  );
  assertEquals([c.thumbnailsFile, c.autoCache], [null, "prefer"]);
  assertEquals(loadConfig(env({ PORT: "" })).port, 8000);
});

Deno.test("loadConfig: bad values name the variable", () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "80a" }, 'PORT must be a non-negative integer (0 to 65535), got "80a"'],
    [
      { SHUTDOWN_GRACE_MS: "-5" },
      'SHUTDOWN_GRACE_MS must be a non-negative integer (0 to 600000), got "-5"',
    ],
    [{ WORKERS: "-1" }, 'WORKERS must be a positive integer (1 to 64), got "-1"'],
    [{ PORT: "70000" }, "PORT must be between"],
    [{ QUEUE_MAX: "-1" }, "QUEUE_MAX"],
    [{ DEFAULT_DEADLINE_MS: "0" }, "DEFAULT_DEADLINE_MS"],
    [{ DEFAULT_DEADLINE_MS: "9999999" }, "DEFAULT_DEADLINE_MS"],
    [{ BACKEND: "cuda" }, "BACKEND must be one of auto, webgpu, wasm"],
    [{ AUTO_CACHE: "yes" }, "AUTO_CACHE"],
    [{ API_TOKEN: "short" }, "API_TOKEN must be at least 16"],
    [{ API_TOKEN: "has a space in the token" }, "API_TOKEN must not contain whitespace"],
    [{ HOST: "bad host" }, "HOST"],
    [
      { HOST: "999.1.1.1" },
      'HOST must be a host name or an IP address (IPv4 such as 127.0.0.1, IPv6 such as ::1), got "999.1.1.1"',
    ],
    [{ HOST: "10.0.0" }, "HOST must be a host name or an IP address"],
    [{ HOST: "010.0.0.1" }, "HOST must be a host name or an IP address"],
    [{ HOST: "host.123" }, "HOST must be a host name or an IP address"],
    [{ HOST: "-lead.example.com" }, "HOST must be a host name or an IP address"],
    [{ HOST: "under_score.example" }, "HOST must be a host name or an IP address"],
    [{ HOST: "::g" }, "HOST must be a host name or an IP address"],
    [{ HOST: "[::1" }, "HOST must be a host name or an IP address"],
    [{ HOST: "1:2:3:4:5:6:7:8:9" }, "HOST must be a host name or an IP address"],
  ];
  for (const [vars, msg] of cases) {
    assert(assertThrows(() => loadConfig(env(vars)), msg) instanceof ConfigError);
  }
});

Deno.test("loadConfig: HOST takes host names and IPv4 and IPv6 addresses", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["localhost", "localhost"],
    ["svc-1.internal.example.com", "svc-1.internal.example.com"],
    ["::", "::"],
    ["::1", "::1"],
    ["[::1]", "::1"], // Deno.serve takes it without brackets
    ["fe80::1:2", "fe80::1:2"],
  ];
  for (const [raw, host] of cases) assertEquals(loadConfig(env({ HOST: raw })).host, host, raw);
});

Deno.test("loadConfig reads only the variables it lists", () => {
  const seen = new Set<string>();
  loadConfig((k) => (seen.add(k), undefined));
  assertEquals([...seen].sort(), [...ENV_VARS].sort());
});

Deno.test("metrics: counters, histogram buckets and the skipped fraction", () => {
  const m = new Metrics();
  m.request("/generate", 200);
  m.request("/generate", 200);
  m.request('/evil/path/with"quote', 404);
  m.latency("/generate", 0.3);
  m.latency("/generate", 7);
  m.deadlineMiss("running");
  m.image(0.5, 20, 100, 120);
  m.image(0, 10, 100, 80);
  const t = m.render({ queueWaiting: 2, queueRunning: 1 });
  assert(t.includes('imagegen_http_requests_total{route="/generate",status="200"} 2'));
  assert(t.includes('imagegen_http_requests_total{route="other",status="404"} 1'));
  assert(t.includes('imagegen_request_duration_seconds_bucket{route="/generate",le="0.25"} 0'));
  assert(t.includes('imagegen_request_duration_seconds_bucket{route="/generate",le="0.5"} 1'));
  assert(t.includes('imagegen_request_duration_seconds_bucket{route="/generate",le="10"} 2'));
  assert(t.includes('imagegen_request_duration_seconds_bucket{route="/generate",le="+Inf"} 2'));
  assert(t.includes("imagegen_queue_depth 2"));
  assert(t.includes("imagegen_queue_running 1"));
  assert(t.includes('imagegen_deadline_misses_total{stage="running"} 1'));
  // step-weighted: (0.5·20 + 0·10) / 30
  assert(t.includes(`imagegen_block_evaluations_skipped_fraction ${10 / 30}`), t);
  assert(t.includes("imagegen_prediction_ratio_sum 2"));
  for (const line of t.trim().split("\n")) {
    assert(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [-+\w.]+)$/.test(line), `bad line: ${line}`);
  }
});
