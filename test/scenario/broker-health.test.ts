/**
 * Broker health and tasks that expire in the queue, on real Redis and real
 * Celery:
 * - Redis started with `--maxmemory 200mb --maxmemory-policy allkeys-lru`
 *   gets broker_eviction_risk naming the policy; /api/broker, /metrics and the
 *   /broker page (in Chromium) say the same; set to noeviction, it resolves;
 * - a default Redis (no maxmemory) gives no broker alert (here the adapter
 *   and the rules; the calm scenario runs all of Crisper on one);
 * - tasks sent with `expires=2` to a queue no worker reads, then a worker
 *   started: they show as REVOKED, "expired before a worker took it", in the
 *   API (reason=expired) and on their page, and one tasks_expired alert names
 *   the task with the count and the queue.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { launchBrowser, SCREENS, scriptErrors } from "../support/browser.ts";
import { sendTasks } from "../support/celery.ts";
import { createRedisBroker } from "../../src/broker/redis/adapter.ts";
import { evictionRisk, memoryHigh, pointOf } from "../../src/detect/checks/broker-health.ts";
import { logger } from "../../src/log.ts";
import type { CrisperUnderTest } from "../support/crisper.ts";
import { waitUntil } from "../support/processes.ts";
import { startRedis } from "../support/redis-server.ts";
import { QUICK_INTERVALS, type Scenario, scenarios } from "../support/scenario.ts";

const servers = scenarios("health", { store: "pglite", redisArgs: ["--maxmemory", "200mb", "--maxmemory-policy", "allkeys-lru"] });
let s: Scenario<CrisperUnderTest>;
let browser: Browser | undefined;

beforeAll(async () => {
  await servers.start();
  // Task events from the worker's start: it discards the expired tasks the moment it comes up.
  s = await servers.scenario({ ...QUICK_INTERVALS, TASKS_EXPIRED_QUIET_S: "600" }, { taskEvents: true });
});

afterAll(async () => {
  await browser?.close();
  await servers.stop();
});

const alertsOf = async (crisper: CrisperUnderTest) => (await crisper.get("/api/alerts?status=all&limit=500")).body.alerts as any[];

async function alertFor(kind: string, subject: string, ok: (a: any) => boolean = () => true) {
  let found: any;
  await waitUntil(
    async () => {
      found = (await alertsOf(s.crisper)).find((a) => a.kind === kind && a.subject === subject && ok(a));
      return Boolean(found);
    },
    60_000,
    `${kind} alert for ${subject}`,
    200,
  );
  return found;
}

test("maxmemory with allkeys-lru: broker_eviction_risk names the policy; /api/broker and /metrics agree", async () => {
  const alert = await alertFor("broker_eviction_risk", "default");
  expect(alert.status).toBe("open");
  expect(alert.severity).toBe("warning");
  expect(alert.summary).toContain("allkeys-lru");
  expect(alert.summary).toContain("noeviction");
  expect(alert.details).toMatchObject({ broker: "default", maxmemory_policy: "allkeys-lru", maxmemory_bytes: 200 * 2 ** 20, evicting: false });

  const { brokers } = (await s.crisper.get("/api/broker")).body;
  expect(brokers).toHaveLength(1);
  expect(brokers[0]).toMatchObject({ broker: "default", kind: "redis", max_memory_policy: "allkeys-lru", max_memory_bytes: 200 * 2 ** 20, eviction_possible: true, evicted_keys: 0 });
  expect(brokers[0].version).toMatch(/^\d+\.\d+/);
  expect(brokers[0].used_memory_bytes).toBeGreaterThan(0);
  expect(brokers[0].connected_clients).toBeGreaterThan(0);

  const metrics = await (await fetch(`${s.crisper.url}/metrics`)).text();
  expect(metrics).toContain(`crisper_broker_maxmemory_bytes{broker="default"} ${200 * 2 ** 20}`);
  expect(metrics).toContain(`crisper_broker_eviction_possible{broker="default"} 1`);
  expect(metrics).toMatch(/crisper_broker_memory_bytes\{broker="default"\} \d+/);
  expect(metrics).toMatch(/crisper_broker_info\{broker="default",kind="redis",version="[\d.]+",maxmemory_policy="allkeys-lru"\} 1/);
  // 200 MB is far from full.
  expect((await alertsOf(s.crisper)).filter((a) => a.kind === "broker_memory_high")).toEqual([]);
}, 90_000);

test("tasks that expire in the queue show as REVOKED, expired, and open one tasks_expired with the count and the queue", async () => {
  const sentAt = Date.now();
  const expiring = await sendTasks(s.lab, [1, 2, 3].map((n) => ({ task: "labapp.add", args: [n, n], expires: 2 })));
  const [fine] = await sendTasks(s.lab, [{ task: "labapp.echo", args: ["in time"] }]);
  // Past their expires (with room for clocks), no worker has taken them yet.
  await waitUntil(() => Date.now() - sentAt > 3500, 10_000, "the tasks' expires to pass", 100);
  await s.worker("late@lab");

  const alert = await alertFor("tasks_expired", "labapp.add", (a) => a.details.count === 3);
  expect(alert.details).toMatchObject({ task: "labapp.add", count: 3, queues: ["celery"] });
  expect(alert.summary).toContain("3 tasks labapp.add expired in queue celery before a worker took them");
  // One alert for the name, not one per task; nothing for the task that ran.
  expect((await alertsOf(s.crisper)).filter((a) => a.kind === "tasks_expired").map((a) => a.subject)).toEqual(["labapp.add"]);

  const listed = (await s.crisper.get("/api/tasks?state=REVOKED&reason=expired")).body.tasks as any[];
  expect(listed.map((t) => t.id).sort()).toEqual([...expiring].sort());
  for (const t of listed) expect(t).toMatchObject({ state: "REVOKED", revoked_reason: "expired", name: "labapp.add", queue: "celery" });
  await waitUntil(async () => (await s.crisper.get(`/api/tasks/${fine}`)).body?.task?.state === "SUCCESS", 30_000, "the task sent in time to succeed");
  expect((await s.crisper.get(`/api/tasks/${fine}`)).body.task.revoked_reason).toBeNull();
  expect((await s.crisper.get("/api/tasks?reason=expired&name=labapp.echo")).body.tasks).toEqual([]);
  expect((await s.crisper.get("/api/tasks?reason=later")).status).toBe(400);

  // The pages: the task's own, and the list filtered by reason.
  const page = await (await fetch(`${s.crisper.url}/tasks/${expiring[0]}`)).text();
  expect(page).toContain("expired before a worker took it");
  const list = await (await fetch(`${s.crisper.url}/tasks?state=REVOKED&reason=expired`)).text();
  for (const id of expiring) expect(list).toContain(id);
  expect(list).not.toContain(fine as string);
}, 120_000);

test("/broker in Chromium: memory, policy and the memory chart", async () => {
  // Enough samples for a chart.
  await waitUntil(async () => (await s.crisper.get("/api/broker")).body.brokers[0]?.history.length >= 3, 30_000, "three health samples");
  browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = scriptErrors(page);
  await page.goto(`${s.crisper.url}/broker`, { waitUntil: "load" });
  expect(await page.locator("h1").first().innerText()).toBe("Broker");
  const text = await page.locator("main").innerText();
  expect(text).toContain("allkeys-lru");
  expect(text).toContain("of 200.0 MB");
  expect(text).toContain("keys evicted since start");
  // The open alert, above the figures.
  expect(text).toContain("broker_eviction_risk");
  expect(text).toContain("may evict Celery's keys");
  expect(await page.locator('main svg[role="img"][aria-label^="broker memory over time"]').count()).toBe(1);
  expect(await page.locator('header a[href="/broker"]').getAttribute("class")).toBe("here");
  await page.screenshot({ path: join(SCREENS, "broker.png"), fullPage: true });
  // The list, filtered by reason through its form: each row says why.
  await page.goto(`${s.crisper.url}/tasks`, { waitUntil: "load" });
  await page.selectOption("select[name=reason]", "expired");
  await page.click("form.filters button");
  await page.waitForURL(/reason=expired/);
  await waitUntil(async () => (await page.locator("#task-rows tr[data-task-id]").count()) === 3, 10_000, "the expired tasks listed");
  expect(await page.locator("#task-rows .reason").allInnerTexts()).toEqual(Array(3).fill("expired before a worker took it"));
  await page.screenshot({ path: join(SCREENS, "tasks-expired.png"), fullPage: true });
  const expired = (await s.crisper.get("/api/tasks?reason=expired&limit=1")).body.tasks[0];
  await page.goto(`${s.crisper.url}/tasks/${expired.id}`, { waitUntil: "load" });
  expect(await page.locator("main").innerText()).toContain("expired before a worker took it");
  await page.screenshot({ path: join(SCREENS, "task-expired.png"), fullPage: true });
  expect(errors).toEqual([]);
  await page.close();
}, 90_000);

test("the policy set to noeviction: broker_eviction_risk resolves", async () => {
  const admin = new Redis(s.lab.brokerUrl);
  try {
    await admin.config("SET", "maxmemory-policy", "noeviction");
  } finally {
    admin.disconnect();
  }
  await waitUntil(
    async () => (await alertsOf(s.crisper)).some((a) => a.kind === "broker_eviction_risk" && a.status === "resolved"),
    30_000,
    "broker_eviction_risk resolved",
    200,
  );
  expect((await s.crisper.get("/api/broker")).body.brokers[0]).toMatchObject({ max_memory_policy: "noeviction", eviction_possible: false });
  expect((await alertsOf(s.crisper)).filter((a) => a.kind === "broker_eviction_risk" && a.status === "open")).toEqual([]);
}, 60_000);

test("a default Redis (no maxmemory): its health says noeviction, no limit, and the rules open nothing", async () => {
  // The adapter and the rules alone: the calm scenario runs the whole of Crisper on a default Redis, at 0 alerts.
  const plain = await startRedis();
  const broker = createRedisBroker({ brokerUrl: plain.url, log: logger("test", () => {}) });
  try {
    const h = await broker.health?.();
    if (!h) throw new Error("the Redis adapter reads no health");
    expect(h).toMatchObject({ kind: "redis", maxMemoryBytes: null, maxMemoryPolicy: "noeviction", evictedKeys: 0 });
    const p = pointOf({ ...h, broker: "default", sampledAt: new Date(h.sampledAt * 1000) });
    expect(evictionRisk([p])).toBeNull();
    expect(memoryHigh(p, false)).toBeNull();
  } finally {
    await broker.close();
    await plain.stop();
  }
}, 30_000);
