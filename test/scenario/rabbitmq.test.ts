/**
 * Crisper on RabbitMQ against the real thing: Debian's rabbitmq-server 3.10
 * and Celery 5.2 workers on amqp://, a Redis result backend, PostgreSQL,
 * and Crisper as `crisper serve` runs it. Each scenario has a vhost, a
 * database and a Crisper of its own. Detection times are printed (`[ttd]`
 * lines), not asserted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CeleryProcess, type LabSettings, sendTasks, startWorker } from "../support/celery.ts";
import { type CrisperUnderTest, startCrisper } from "../support/crisper.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { waitUntil } from "../support/processes.ts";
import { timeToAlert, victimHoldingPrefetched } from "../support/detection.ts";
import { type RabbitServer, startRabbit } from "../support/rabbitmq-server.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

let rabbit: RabbitServer;
let redis: RedisServer;
let pg: PostgresServer;
let n = 0;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const t0 = performance.now();
  [rabbit, redis, pg] = await Promise.all([startRabbit(), startRedis(), startPostgres()]);
  console.log(`[rabbitmq] servers up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

afterAll(async () => {
  const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => {}), Bun.sleep(30_000)]);
  for (const c of cleanups.reverse()) await bounded(c());
  await bounded(Promise.all([rabbit?.stop(), redis?.stop(), pg?.stop()]));
});

/** A vhost of its own, through the management API (quicker than rabbitmqctl). */
async function createVhost(server: RabbitServer, vhost: string) {
  const api = new URL(server.managementUrl);
  const headers = { authorization: `Basic ${btoa(`${api.username}:${api.password}`)}`, "content-type": "application/json" };
  const root = `http://${api.host}/api`;
  const put = async (path: string, body: unknown) => {
    const res = await fetch(root + path, { method: "PUT", headers, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
  };
  await put(`/vhosts/${encodeURIComponent(vhost)}`, {});
  await put(`/permissions/${encodeURIComponent(vhost)}/guest`, { configure: ".*", write: ".*", read: ".*" });
}

/** A fresh vhost, result-backend db, database and Crisper for one scenario. */
async function scenario(env: Record<string, string> = {}, lab: Partial<LabSettings> = {}, server: RabbitServer = rabbit) {
  n++;
  const vhost = `scenario${n}`;
  await createVhost(server, vhost);
  const brokerUrl = `amqp://guest:guest@127.0.0.1:${server.port}/${vhost}`;
  const resultBackend = `redis://127.0.0.1:${redis.port}/${n}`;
  const dataDir = mkdtempSync(join(tmpdir(), "crisper-rabbit-scenario-"));
  const crisperEnv = {
    BROKER_URL: brokerUrl,
    RESULT_BACKEND_URL: resultBackend,
    DATABASE_URL: await createDatabase(pg.url, `rabbit${n}`),
    DATA_DIR: dataDir,
    ENABLE_EVENTS_INTERVAL_S: "1",
    QUEUE_SAMPLE_INTERVAL_S: "1",
    DETECT_INTERVAL_S: "0.5",
    INSPECT_INTERVAL_S: "1",
    ...env,
  };
  const state = { crisper: await startCrisper(crisperEnv) };
  const workers: CeleryProcess[] = [];
  cleanups.push(async () => {
    for (const w of workers) await w.kill();
    await state.crisper.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const settings: LabSettings = { brokerUrl, resultBackend, ...lab };
  const s = {
    get crisper(): CrisperUnderTest {
      return state.crisper;
    },
    lab: settings,
    /** Stops Crisper (as SIGTERM would); `start` brings it back on the same database and queue. */
    async stopCrisper() {
      await state.crisper.stop();
    },
    async startCrisper() {
      state.crisper = await startCrisper(crisperEnv);
    },
    async worker(hostname: string, opts: Partial<Parameters<typeof startWorker>[0]> = {}) {
      const w = await startWorker({ ...settings, hostname, concurrency: 1, ...opts });
      workers.push(w);
      return w;
    },
    alerts: async (status = "all") => (await state.crisper.get(`/api/alerts?status=${status}&limit=500`)).body.alerts as any[],
    task: async (id: string) => (await state.crisper.get(`/api/tasks/${id}`)).body,
    queue: async (name: string) => ((await state.crisper.get("/api/queues")).body.queues as any[]).find((q) => q.name === name),
  };
  return s;
}

type Scenario = Awaited<ReturnType<typeof scenario>>;

const until = (what: string, check: () => Promise<boolean>, ms = 60_000) => waitUntil(check, ms, what, 200);

/** The types of a task's events as its workers sent them (the result backend's announcements are kept too, as source "result-backend"). */
const eventTypes = (body: any) => (body.events as any[]).filter((e) => e.source === "events").map((e) => e.type);

describe("Crisper on RabbitMQ, with real Celery workers", () => {
  test("queue depth before any worker; then states with traceback and retries; a never-seen id is a 404", async () => {
    const s = await scenario();
    const ids = await sendTasks(s.lab, [
      { task: "labapp.add", args: [2, 3] },
      { task: "labapp.boom", args: ["card declined"] },
      { task: "labapp.flaky" },
      { task: "labapp.add", args: [1, 1], queue: "reports" },
    ]);
    // Nobody consumes yet: the queues' depth shows (task-sent named them).
    await until("depth before any worker", async () => (await s.queue("celery"))?.depth === 3 && (await s.queue("reports"))?.depth === 1);

    // Task events on from its start: it runs the queued tasks at once (the
    // events-off worker, switched on by Crisper, is the next scenario).
    await s.worker("states@lab", { queues: ["celery", "reports"], taskEvents: true });
    const [add, boom, flaky] = ids as [string, string, string];
    await until("all finished", async () => {
      const states = await Promise.all(ids.map(async (id) => (await s.task(id))?.task?.state));
      return states.every((st) => st === "SUCCESS" || st === "FAILURE");
    });
    expect((await s.task(add)).task).toMatchObject({ state: "SUCCESS", result: "5", worker: "states@lab", queue: "celery" });
    const failed = (await s.task(boom)).task;
    expect(failed).toMatchObject({ state: "FAILURE", exception: expect.stringContaining("card declined") });
    expect(failed.traceback).toContain("ValueError");
    const retried = await s.task(flaky);
    expect(retried.task).toMatchObject({ state: "FAILURE", retries: 2 });
    expect(retried.task.traceback).toContain("ConnectionError");
    expect(eventTypes(retried).filter((t: string) => t === "task-retried")).toHaveLength(2);
    expect(retried.task.executions).toHaveLength(3);
    await until("queues drained", async () => (await s.queue("celery"))?.depth === 0);

    const missing = await s.crisper.get(`/api/tasks/${crypto.randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toContain("never seen");
  }, 180_000);

  test("an events-off worker is switched on by enable_events: received and started come from its events", async () => {
    const s = await scenario();
    await s.worker("quiet@lab");
    // Celery's default: no task events. Crisper broadcasts enable_events every
    // second; until the worker has it, a task's received and started are not
    // sent (its final state still comes from the result backend). Keep sending
    // until one task's whole life came as events.
    let id: string | undefined;
    await until("a task seen through its events", async () => {
      [id] = await sendTasks(s.lab, [{ task: "labapp.add", args: [1, 2] }]);
      const sent = id as string;
      await until("succeeded", async () => (await s.task(sent))?.task?.state === "SUCCESS");
      const types = eventTypes(await s.task(sent));
      return ["task-received", "task-started", "task-succeeded"].every((t) => types.includes(t));
    });
    expect((await s.task(id as string)).task).toMatchObject({ worker: "quiet@lab", result: "3" });
    expect((await s.alerts()).filter((a) => a.kind === "events_disabled")).toEqual([]);
  }, 120_000);

  test("Crisper stopped while 20 tasks run, then started: their full event history is there", async () => {
    const s = await scenario();
    // Task events on from the start: Crisper will be away when most of them happen.
    await s.worker("busy@lab", { concurrency: 4, taskEvents: true });
    const ids = await sendTasks(s.lab, Array.from({ length: 20 }, () => ({ task: "labapp.sleepy", args: [1] })));
    await until("running", async () => (await s.task(ids[0] as string))?.task?.state === "STARTED");
    await s.stopCrisper();
    // Five rounds of four: they run and finish while Crisper is away; their events wait in its queue.
    await Bun.sleep(8000);
    await s.startCrisper();
    await until("20 tasks with their history", async () => {
      for (const id of ids) {
        const body = await s.task(id);
        if (body?.task?.state !== "SUCCESS") return false;
      }
      return true;
    });
    for (const id of ids) {
      const body = await s.task(id);
      // received and started exist only as events: the result backend cannot give them.
      expect(eventTypes(body)).toEqual(expect.arrayContaining(["task-sent", "task-received", "task-started", "task-succeeded"]));
      expect(body.task.received_at).not.toBeNull();
      expect(body.task.started_at).not.toBeNull();
    }
  }, 180_000);

  test("a worker SIGKILLed mid-task: worker_offline and task_lost; its prefetched messages go back to the queue, not stranded", async () => {
    const s = await scenario();
    const { worker: w, running, prefetched } = await victimHoldingPrefetched(s);
    await until("prefetched counted out of the queue", async () => (await s.queue("celery"))?.depth === 0);

    const killedAt = performance.now();
    await w.kill();
    // RabbitMQ requeues what the closed connection held, at once.
    await until("prefetched back in the queue", async () => (await s.queue("celery"))?.depth === 2);
    console.log(`[ttd] rabbitmq prefetched back in the queue: ${((performance.now() - killedAt) / 1000).toFixed(1)} s`);
    const lost = await timeToAlert(s, "task_lost", running, killedAt, { timeoutMs: 90_000, label: "rabbitmq " });
    expect(lost.alert).toMatchObject({ status: "open", details: { worker: "victim@lab", state: "STARTED" } });
    // Acknowledged when it started (Celery's default): nothing of it is left unacked.
    expect(lost.alert.details.still_unacked).toBe(false);
    expect((await s.alerts()).find((a) => a.kind === "worker_offline")).toMatchObject({ subject: "victim@lab", status: "open" });
    await s.crisper.detector.nextPass();
    await s.crisper.detector.nextPass();
    expect((await s.alerts()).filter((a) => a.kind === "prefetched_stranded")).toEqual([]);

    // A new worker takes the requeued messages: delivered again, as redelivered.
    await s.worker("heir@lab", { prefetchMultiplier: 4 });
    await until("requeued tasks running again", async () => (await s.task(prefetched[0] as string))?.task?.worker === "heir@lab");
    const heir = (await s.crisper.get("/api/workers")).body.workers.find((x: any) => x.hostname === "heir@lab");
    expect(heir).toBeDefined();
  }, 180_000);
});

describe("RabbitMQ's consumer_timeout", () => {
  test("a late-acked task past consumer_timeout: the risk first, then the duplicate RabbitMQ causes", async () => {
    // A node of its own: consumer_timeout is node-wide (10 s here, 30 min by default).
    const strict = await startRabbit({ consumerTimeoutMs: 10_000 });
    // Stopped after the scenario's Crisper and workers (cleanups run last first).
    cleanups.push(() => strict.stop());
    const s = await scenario({ BROKER_CONSUMER_TIMEOUT: "10" }, { acksLate: true, prefetchMultiplier: 1, taskEvents: true }, strict);
    await Promise.all([s.worker("dup1@lab"), s.worker("dup2@lab")]);
    // Longer than RabbitMQ takes to notice (its check runs every minute or so).
    const [id] = await sendTasks(s.lab, [{ task: "labapp.sleepy", args: [100] }]);
    await until("started", async () => (await s.task(id as string))?.task?.state === "STARTED");
    const startedAt = performance.now();
    const risk = await timeToAlert(s, "visibility_timeout_risk", id as string, startedAt, { timeoutMs: 90_000, label: "rabbitmq " });
    expect(risk.alert.summary).toContain("consumer_timeout");
    expect(risk.alert.details).toMatchObject({ visibility_timeout_s: 10, limit: "consumer_timeout" });
    // RabbitMQ closes the late-acker's channel (its check is periodic: about a minute here); that
    // worker's main process exits ("Unrecoverable error") and the other worker runs the task again.
    const dup = await timeToAlert(s, "duplicate_execution", id as string, startedAt, { timeoutMs: 150_000, label: "rabbitmq " });
    expect([...dup.alert.details.workers].sort()).toEqual(["dup1@lab", "dup2@lab"]);
  }, 240_000);
});
