/**
 * The one binary (`bun build --compile`): built from this checkout, started
 * with nothing but a broker to watch (embedded PGlite, whose wasm and data
 * files travel inside it, as do the pages' scripts), it collects a real
 * Celery task and serves its pages. The same binary's `crisper demo`, with no
 * broker at all, shows a simulated cluster's tasks and its staged failures.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { launchBrowser, SCREENS } from "../support/browser.ts";
import { type CeleryProcess, sendTasks, startWorker } from "../support/celery.ts";
import { freePort } from "../support/ports.ts";
import { spawnTracked, waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const root = join(import.meta.dir, "..", "..");
let dir: string;
let redis: RedisServer;
let worker: CeleryProcess | undefined;
let binary: ReturnType<typeof spawnTracked> | undefined;
let demo: ReturnType<typeof spawnTracked> | undefined;
let browser: Browser | undefined;
/** The binary, built once for every test here. */
let out: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "crisper-binary-"));
  out = join(dir, "crisper");
  const build = Bun.spawnSync([process.execPath, "build", "--compile", join(root, "src", "cli.ts"), "--outfile", out], { cwd: root });
  if (build.exitCode !== 0) throw new Error(`bun build --compile failed:\n${build.stderr.toString()}`);
  redis = await startRedis();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  for (const p of [binary, demo]) {
    p?.proc.kill("SIGTERM");
    await p?.proc.exited;
  }
  await worker?.kill();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("the compiled binary runs on its own: embedded database, pages, a real task", async () => {
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

test("crisper demo from the binary, in an empty directory with no broker: tasks, then every staged failure", async () => {
  const port = await freePort();
  const runDir = mkdtempSync(join(dir, "demo-"));
  // Nothing but the binary: no BROKER_URL, no DATA_DIR (a temporary directory under TMPDIR), no node_modules.
  demo = spawnTracked([out, "demo"], { cwd: runDir, env: { PATH: process.env.PATH ?? "", HOME: runDir, TMPDIR: runDir, PORT: String(port), HOST: "127.0.0.1" } });
  const url = `http://127.0.0.1:${port}`;
  const get = async (path: string) => (await fetch(url + path)).json();
  await waitUntil(
    async () => {
      if (demo?.proc.exitCode !== null) throw new Error(`crisper demo exited:\n${demo?.output.text()}`);
      return fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    },
    60_000,
    "crisper demo ready",
    200,
  );
  expect(demo.output.text()).toContain(`Crisper demo: ${url}`);
  // Tasks within 30 s of the server answering.
  await waitUntil(async () => (await get("/api/tasks?limit=5")).tasks.length > 0, 30_000, "the demo's first tasks", 250);

  const wanted = ["worker_offline", "task_lost", "duplicate_execution", "beat_missed"];
  let kinds = new Set<string>();
  await waitUntil(
    async () => {
      kinds = new Set(((await get("/api/alerts?status=all&limit=500")).alerts as { kind: string }[]).map((a) => a.kind));
      return wanted.every((k) => kinds.has(k));
    },
    180_000,
    `alerts ${wanted.join(", ")}`,
    1000,
  );
  for (const k of wanted) expect(kinds).toContain(k);
  // The rest of the cycle, a few seconds later, so that the screenshots show every kind it stages.
  await waitUntil(
    async () => {
      const alerts = (await get("/api/alerts?status=all&limit=500")).alerts as { kind: string }[];
      return ["task_stalled", "queue_backlog", "prefetched_stranded", "tasks_expired"].every((k) => alerts.some((a) => a.kind === k));
    },
    120_000,
    "task_stalled, queue_backlog, prefetched_stranded and tasks_expired",
    1000,
  );

  // Every page says it is demo data.
  for (const path of ["/", "/tasks", "/alerts", "/workers"]) {
    expect(await (await fetch(url + path, { headers: { accept: "text/html" } })).text()).toContain("Demo data.");
  }

  // What a person sees: the overview, and the task that ran twice.
  const duplicate = ((await get("/api/alerts?status=all&kind=duplicate_execution")).alerts as { subject: string }[])[0]?.subject;
  expect(duplicate).toBeString();
  browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${url}/`);
  await page.getByText("Demo data.").waitFor();
  await page.screenshot({ path: join(SCREENS, "demo-overview.png"), fullPage: true });
  await page.goto(`${url}/tasks/${duplicate}`);
  await page.getByText("reports.tasks.export_ledger").first().waitFor();
  await page.screenshot({ path: join(SCREENS, "demo-task-duplicate.png"), fullPage: true });
  await page.goto(`${url}/alerts?status=all`);
  await page.screenshot({ path: join(SCREENS, "demo-alerts.png"), fullPage: true });
  expect(errors).toEqual([]);
}, 300_000);
