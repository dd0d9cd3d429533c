/**
 * The one binary (`bun build --compile`): built from this checkout, started
 * with nothing but a broker to watch (embedded PGlite, whose wasm and data
 * files travel inside it, as do the pages' scripts), it collects a real
 * Celery task and serves its pages.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CeleryProcess, sendTasks, startWorker } from "../support/celery.ts";
import { freePort } from "../support/ports.ts";
import { spawnTracked, waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const root = join(import.meta.dir, "..", "..");
let dir: string;
let redis: RedisServer;
let worker: CeleryProcess | undefined;
let binary: ReturnType<typeof spawnTracked> | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "crisper-binary-"));
  redis = await startRedis();
});

afterAll(async () => {
  binary?.proc.kill("SIGTERM");
  await binary?.proc.exited;
  await worker?.kill();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("the compiled binary runs on its own: embedded database, pages, a real task", async () => {
  const out = join(dir, "crisper");
  const build = Bun.spawnSync([process.execPath, "build", "--compile", join(root, "src", "cli.ts"), "--outfile", out], { cwd: root });
  expect(build.exitCode).toBe(0);
  expect(Bun.spawnSync([out, "--version"]).stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+/);

  const port = await freePort();
  // Started from an empty directory, away from the checkout and its node_modules.
  const runDir = mkdtempSync(join(dir, "run-"));
  binary = spawnTracked([out, "serve"], {
    cwd: runDir,
    env: { PATH: process.env.PATH ?? "", HOME: runDir, BROKER_URL: redis.url, PORT: String(port), HOST: "127.0.0.1", ENABLE_EVENTS_INTERVAL_S: "1" },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(async () => fetch(`${url}/readyz`).then((r) => r.ok, () => false), 60_000, "binary ready", 200);
  for (const asset of ["htmx.min.js", "sse.min.js"]) {
    const res = await fetch(`${url}/assets/${asset}`);
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBeGreaterThan(1000);
  }
  worker = await startWorker({ brokerUrl: redis.url, hostname: "bin@lab", concurrency: 1, taskEvents: true });
  const [id] = await sendTasks({ brokerUrl: redis.url }, [{ task: "labapp.add", args: [20, 22] }]);
  await waitUntil(async () => (await (await fetch(`${url}/api/tasks/${id}`)).json())?.task?.state === "SUCCESS", 60_000, "task SUCCESS", 200);
  const page = await fetch(`${url}/tasks/${id}`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("labapp.add");
}, 180_000);
