/**
 * Two brokers in one Crisper (BROKERS): a Redis and a RabbitMQ, a real Celery
 * worker on each — both named lab@host, as two clusters may name theirs — one
 * Redis result backend, PostgreSQL, and Crisper as `crisper serve` runs it.
 * One setup for the whole file; the tests run in order on it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CeleryProcess, type LabSettings, sendTasks, startWorker } from "../support/celery.ts";
import { type CrisperUnderTest, startCrisper } from "../support/crisper.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { waitUntil } from "../support/processes.ts";
import { type RabbitServer, startRabbit } from "../support/rabbitmq-server.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";
import { launchBrowser, SCREENS } from "../support/browser.ts";

let rabbit: RabbitServer;
let redisBroker: RedisServer;
let redisResults: RedisServer;
let pg: PostgresServer;
let crisper: CrisperUnderTest;
let env: Record<string, string>;
let dataDir: string;
const workers: CeleryProcess[] = [];
let red: LabSettings;
let rab: LabSettings;

const HOSTNAME = "lab@host";

beforeAll(async () => {
  const t0 = performance.now();
  [rabbit, redisBroker, redisResults, pg] = await Promise.all([startRabbit(), startRedis(), startRedis(), startPostgres()]);
  const resultBackend = `redis://127.0.0.1:${redisResults.port}/0`;
  red = { brokerUrl: `redis://127.0.0.1:${redisBroker.port}/0`, resultBackend, taskEvents: true };
  rab = { brokerUrl: rabbit.url, resultBackend, taskEvents: true };
  dataDir = mkdtempSync(join(tmpdir(), "crisper-brokers-"));
  env = {
    BROKERS: `red=${red.brokerUrl}; rab=${rab.brokerUrl}`,
    RABBITMQ_MANAGEMENT_URL: rabbit.managementUrl,
    RESULT_BACKEND_URL: resultBackend,
    DATABASE_URL: await createDatabase(pg.url, "brokers"),
    DATA_DIR: dataDir,
    // Small, so that the events published while Crisper is away overflow it.
    EVENT_QUEUE_MAX_BYTES: "4096",
    ENABLE_EVENTS_INTERVAL_S: "1",
    QUEUE_SAMPLE_INTERVAL_S: "1",
    DETECT_INTERVAL_S: "0.5",
    INSPECT_INTERVAL_S: "1",
    // Gaps resolve soon after the stream is steady again, so each test sees its own.
    EVENT_GAP_MERGE_S: "3",
  };
  crisper = await startCrisper(env);
  workers.push(...(await Promise.all([startWorker({ ...red, hostname: HOSTNAME }), startWorker({ ...rab, hostname: HOSTNAME })])));
  console.log(`[brokers] servers, Crisper and workers up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}, 120_000);

afterAll(async () => {
  const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => {}), Bun.sleep(30_000)]);
  for (const w of workers) await bounded(w.kill());
  await bounded(crisper?.stop());
  await bounded(Promise.all([rabbit?.stop(), redisBroker?.stop(), redisResults?.stop(), pg?.stop()]));
  rmSync(dataDir, { recursive: true, force: true });
});

const until = (what: string, check: () => Promise<boolean>, ms = 60_000) => waitUntil(check, ms, what, 200);
const api = async (path: string) => (await crisper.get(path)).body;
const task = async (id: string) => (await api(`/api/tasks/${id}`))?.task;
const alerts = async (query = "status=all") => (await api(`/api/alerts?${query}&limit=500`)).alerts as any[];

describe("two brokers in one Crisper, a Redis and a RabbitMQ", () => {
  test("tasks, workers and queues carry their broker; broker= filters them; /metrics labels by broker", async () => {
    const [onRed] = await sendTasks(red, [{ task: "labapp.add", args: [1, 2] }]);
    const [onRab] = await sendTasks(rab, [{ task: "labapp.add", args: [3, 4] }]);
    await until("both succeeded", async () => (await task(onRed as string))?.state === "SUCCESS" && (await task(onRab as string))?.state === "SUCCESS");
    expect(await task(onRed as string)).toMatchObject({ broker: "red", result: "3", worker: HOSTNAME, queue: "celery" });
    expect(await task(onRab as string)).toMatchObject({ broker: "rab", result: "7", worker: HOSTNAME, queue: "celery" });

    // The filter: each broker's tasks only.
    const ids = async (broker: string) => ((await api(`/api/tasks?broker=${broker}`)).tasks as any[]).map((t) => t.id);
    expect(await ids("red")).toEqual([onRed]);
    expect(await ids("rab")).toEqual([onRab]);
    expect((await crisper.get("/api/tasks?broker=NOT%20A%20NAME")).status).toBe(400);

    // One worker name on two brokers is two workers; one queue name, two queues.
    await until("both workers", async () => ((await api("/api/workers")).workers as any[]).length === 2);
    const ws = (await api("/api/workers")).workers as any[];
    expect(ws.map((w) => [w.hostname, w.broker, w.status]).sort()).toEqual([
      [HOSTNAME, "rab", "online"],
      [HOSTNAME, "red", "online"],
    ]);
    expect(((await api("/api/workers?broker=rab")).workers as any[]).map((w) => w.broker)).toEqual(["rab"]);
    await until("the celery queue on both", async () => ((await api("/api/queues")).queues as any[]).filter((q) => q.name === "celery").length === 2);
    expect(((await api("/api/queues?broker=red")).queues as any[]).every((q) => q.broker === "red")).toBe(true);

    const metrics = await (await fetch(`${crisper.url}/metrics`)).text();
    expect(metrics).toMatch(/celery_task_succeeded_total\{[^}]*broker="red"[^}]*\} 1/);
    expect(metrics).toMatch(/celery_task_succeeded_total\{[^}]*broker="rab"[^}]*\} 1/);
    expect(metrics).toContain(`celery_worker_up{hostname="${HOSTNAME}",broker="red"} 1`);
    expect(metrics).toContain(`celery_worker_up{hostname="${HOSTNAME}",broker="rab"} 1`);
    expect(metrics).toMatch(/celery_queue_length\{queue_name="celery",broker="rab"\}/);

    const ready = await crisper.get("/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.brokers).toEqual({ red: "ok", rab: "ok" });

    // The pages: the broker on each record, and a filter.
    const page = await (await fetch(`${crisper.url}/tasks?broker=rab`)).text();
    expect(page).toContain('<span class="broker" title="broker rab">rab</span>');
    expect(page).not.toContain(onRed as string);
    expect(page).toContain('<select name="broker">');
    // With the management API: who consumes the queue, with its prefetch
    // (once RabbitMQ's statistics, every 5 s, have seen the worker's channel).
    let queues = "";
    await until("the consumers on the queues page", async () => {
      queues = await (await fetch(`${crisper.url}/queues?broker=rab`)).text();
      return queues.includes("Prefetch");
    });
    // Celery's prefetch: concurrency 2 × worker_prefetch_multiplier 4, set on the worker's channel.
    expect(queues).toMatch(/<td>8<\/td>/);
    expect(queues).not.toContain("Without RABBITMQ_MANAGEMENT_URL");
    expect(queues).not.toContain("crisper.events");
    expect((await alerts()).filter((a) => a.kind === "event_gap")).toEqual([]);
  }, 120_000);

  test("pages in Chromium: a broker badge on each record, and the tasks page filters by broker", async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      for (const [path, name] of [["/workers", "brokers-workers"], ["/queues", "brokers-queues"], ["/tasks", "brokers-tasks"]] as const) {
        await page.goto(crisper.url + path, { waitUntil: "load" });
        await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
      }
      // On /tasks: both brokers' tasks, then one broker's through the form.
      expect(await page.locator("span.broker", { hasText: "red" }).count()).toBeGreaterThan(0);
      expect(await page.locator("span.broker", { hasText: "rab" }).count()).toBeGreaterThan(0);
      await page.selectOption('select[name="broker"]', "rab");
      await page.click('form.filters button[type="submit"]');
      await page.waitForURL(/broker=rab/);
      await page.waitForFunction(() => !document.querySelector("#task-rows span.broker:not([title='broker rab'])"));
      expect(await page.locator("#task-rows span.broker", { hasText: "red" }).count()).toBe(0);
      await page.screenshot({ path: join(SCREENS, "brokers-tasks-filtered.png"), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  test("Crisper away: RabbitMQ kept the events (no 'not running' gap there) until its queue overflowed, which is an event_gap for rab", async () => {
    await crisper.stop();
    const stoppedAt = Date.now() / 1000;
    // While Crisper is away: far more than 4 KB of events on RabbitMQ, and some on Redis.
    const onRab = await sendTasks(rab, Array.from({ length: 20 }, (_, i) => ({ task: "labapp.add", args: [i, i] })));
    await sendTasks(red, [{ task: "labapp.add", args: [5, 5] }]);
    // Away long enough that Redis's silence counts as a gap (src/processes.ts, silenceBeforeStart).
    await Bun.sleep(Math.max(0, (stoppedAt + 11 - Date.now() / 1000) * 1000));
    crisper = await startCrisper(env);

    await until("an event_gap on each broker", async () => {
      const gaps = (await alerts()).filter((a) => a.kind === "event_gap");
      return gaps.some((a) => a.broker === "rab") && gaps.some((a) => a.broker === "red");
    });
    const gaps = (await alerts()).filter((a) => a.kind === "event_gap");
    const rabGap = gaps.find((a) => a.broker === "rab");
    const redGap = gaps.find((a) => a.broker === "red");
    // RabbitMQ's queue kept what fitted: the overflow is its only interruption.
    expect(rabGap.details.reason).toContain("overflowed");
    expect(rabGap.details.cuts).toBe(1);
    // Redis PUB/SUB keeps nothing for an absent subscriber.
    expect(redGap.details.reason).toContain("not running");
    // Reconciled from the result backend, as for a Redis cut: the tasks
    // whose every event was dropped too (the dropped events name them).
    expect(rabGap.details.recovered).toBeGreaterThan(0);
    // (A task sent on Redis while Crisper was away is not known at all: PUB/SUB names nothing it dropped.)
    await until("all finished, from events or the result backend", async () => {
      for (const id of onRab) if ((await task(id))?.state !== "SUCCESS") return false;
      return true;
    });
    expect(await task(onRab[0] as string)).toMatchObject({ broker: "rab", result: "0" });
  }, 120_000);

  test("one broker down alerts for that broker only, and /readyz names it", async () => {
    await until("the last test's gaps resolved", async () => !(await alerts("status=open")).some((a) => a.kind === "event_gap"));
    const openBefore = new Set((await alerts("status=open")).map((a) => a.id));
    await redisBroker.stop();
    await until("an event_gap for red that says the stream is down", async () => {
      const gap = (await alerts("status=open")).find((a) => a.kind === "event_gap" && a.broker === "red");
      return typeof gap?.details.interrupted_since === "string";
    });
    const ready = await crisper.get("/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body.brokers.rab).toBe("ok");
    expect(ready.body.brokers.red).not.toBe("ok");
    expect(ready.body.down).toEqual(["broker red"]);
    // A few passes later, nothing new about rab.
    for (let i = 0; i < 3; i++) await crisper.detector.nextPass();
    const opened = (await alerts("status=open")).filter((a) => !openBefore.has(a.id));
    expect(opened.length).toBeGreaterThan(0);
    expect(opened.filter((a) => a.broker !== "red")).toEqual([]);
    // Pages and Slack read which broker it is about in the summary.
    for (const a of opened) expect(a.summary).toStartWith("[red] ");
    // The other broker carries on.
    const [id] = await sendTasks(rab, [{ task: "labapp.add", args: [20, 22] }]);
    await until("rab still collected", async () => (await task(id as string))?.state === "SUCCESS");
  }, 120_000);
});
