/**
 * One contract, run against every store (PGlite and PostgreSQL): the stored
 * tasks equal the pure merge of the captured events, whatever the order and
 * however often they are written.
 */
import { expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { taskPatchesFromEvents } from "../../src/state/task-patch.ts";
import type { Database } from "../../src/store/database.ts";
import { getTask, getTaskEvents, listTasks } from "../../src/store/queries/tasks.ts";
import { listWorkers } from "../../src/store/queries/workers.ts";
import { decodeCursor } from "../../src/store/queries/cursor.ts";
import { insertBrokerSample, insertQueueSamples, writeBatch } from "../../src/store/writes.ts";
import type { BrokerHealth } from "../../src/broker/port.ts";
import { brokerHistory, latestBrokerSamples } from "../../src/store/queries/broker.ts";
import { expiredSince } from "../../src/store/queries/expired.ts";
import { listQueues } from "../../src/store/queries/queues.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { workerSettings } from "../../src/celery/worker-config.ts";
import { MEMORY_SAMPLES_KEPT, getWorkerConfig, memoryHistory, saveWorkerConfig, workerRuntimes, workerVisibilityTimeouts } from "../../src/store/queries/worker-config.ts";

const events = [...captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")), ...captureMessages(readCapture("celery-5.2-redis-faults.jsonl"))].flatMap(
  (m) => decodeRawMessage(m).events,
);
const expected = taskPatchesFromEvents(events);

async function snapshot(database: Database): Promise<string> {
  const rows = await database.rows(sql`select * from tasks order by id`);
  const n = await database.rows<{ n: number }>(sql`select count(*)::int as n from events`);
  return JSON.stringify({ rows, events: n[0]?.n });
}

export function storeContract(get: () => Database) {
  test("a replay lands as the pure merge says", async () => {
    const database = get();
    // Event by event in capture order, as a live collector would (many small batches).
    for (let i = 0; i < events.length; i += 7) await writeBatch(database, buildBatch(events.slice(i, i + 7)));
    for (const [id, want] of expected) {
      const got = await getTask(database, id);
      expect(got?.state).toBe(want.state);
      expect(got?.worker).toBe(want.worker);
      expect(got?.result).toBe(want.result);
      expect(got?.exception).toBe(want.exception);
      expect(got?.retries).toBe(want.retries);
      expect(got?.name).toBe(want.name);
      expect(got?.args).toBe(want.args);
    }
  });

  test("storing everything again, in one batch and reversed, changes nothing", async () => {
    const database = get();
    const before = await snapshot(database);
    await writeBatch(database, buildBatch(events));
    await writeBatch(database, buildBatch([...events].reverse()));
    expect(await snapshot(database)).toBe(before);
  });

  test("a task's events come back in time order, every one", async () => {
    const database = get();
    const flaky = [...expected.values()].find((t) => t.name === "labapp.flaky");
    const stored = await getTaskEvents(database, [flaky?.id ?? ""]);
    const want = events.filter((e) => e.uuid === flaky?.id);
    expect(stored.length).toBe(new Set(want.map((e) => JSON.stringify([e.source, e.type, e.timestamp, e.hostname]))).size);
    const times = stored.map((e) => e.timestamp.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  test("every event comes back with every field it came with, though its task's descriptive fields are stored once", async () => {
    const database = get();
    const ids = [...expected.keys()];
    const stored = await getTaskEvents(database, ids);
    for (const e of stored) {
      // The event as decoded: same task, source, type and sender, the same time to the millisecond (what a Date keeps).
      const want = events.find(
        (x) =>
          x.uuid === e.taskId && x.source === e.source && x.type === e.type && x.hostname === e.hostname &&
          Math.abs(x.timestamp * 1000 - e.timestamp.getTime()) < 1,
      )?.fields;
      expect(want).toBeDefined();
      // Compared as sets of fields: the ones put back come last.
      expect(Object.fromEntries(Object.entries(e.fields).sort())).toEqual(Object.fromEntries(Object.entries(want ?? {}).sort()));
    }
    // And they were left out of most stored events (the captures' task-sent and task-received carry them).
    const [row] = await database.rows<{ n: number }>(sql`select count(*)::int as n from events where fields_in_task <> 0`);
    expect(row?.n).toBeGreaterThan(10);
  });

  test("lists page newest first with a cursor, and filter", async () => {
    const database = get();
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await listTasks(database, { limit: 4, cursor: cursor ? decodeCursor(cursor) : null });
      all.push(...page.tasks.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(all.length).toBe(expected.size);
    expect(new Set(all).size).toBe(expected.size);
    const failed = await listTasks(database, { limit: 50, state: "FAILURE" });
    expect(failed.tasks.map((t) => t.name).sort()).toEqual(["labapp.boom", "labapp.flaky", "labapp.suicide"]);
    const search = await listTasks(database, { limit: 50, q: "card declined" });
    expect(search.tasks.map((t) => t.name)).toEqual(["labapp.boom"]);
    const like = await listTasks(database, { limit: 50, q: "100%_" });
    expect(like.tasks).toEqual([]);
  });

  test("a text search looks at a window of tasks per request and hands back a cursor to go on", async () => {
    const database = get();
    const newestFirst = (await listTasks(database, { limit: 1000 })).tasks.map((t) => t.id);
    const boom = newestFirst.indexOf((await listTasks(database, { limit: 1, q: "card declined" })).tasks[0]?.id as string);
    expect(boom).toBeGreaterThan(2);
    // Windows of two tasks: the match turns up after empty pages, each with a cursor, and then the search ends.
    let cursor: string | null = null;
    let requests = 0;
    const found: string[] = [];
    do {
      const page = await listTasks(database, { limit: 50, q: "card declined", searchWindow: 2, cursor: cursor ? decodeCursor(cursor) : null });
      requests++;
      found.push(...page.tasks.map((t) => t.name ?? ""));
      if (page.nextCursor) expect(page.searchedWindow).toBe(2);
      cursor = page.nextCursor;
    } while (cursor);
    expect(found).toEqual(["labapp.boom"]);
    // One request per two tasks (and one more when the last window was exactly full).
    expect(requests).toBeGreaterThanOrEqual(Math.ceil(newestFirst.length / 2));
    expect(requests).toBeLessThanOrEqual(Math.floor(newestFirst.length / 2) + 1);
    // A window larger than the store: one request, no cursor.
    const whole = await listTasks(database, { limit: 50, q: "card declined", searchWindow: newestFirst.length + 1 });
    expect(whole.nextCursor).toBeNull();
    expect(whole.searchedWindow).toBeUndefined();
  });

  test("workers: clean shutdown recorded, stats from the latest event", async () => {
    const database = get();
    const workers = await listWorkers(database);
    const cap1 = workers.find((w) => w.hostname === "cap1@lab");
    expect(cap1?.offlineAt).not.toBeNull();
    expect(cap1?.processed).toBe(11);
    expect(workers.find((w) => w.hostname === "gen6768@vm")).toBeUndefined();
  });

  test("queue samples keep history and the latest per queue", async () => {
    const database = get();
    await insertQueueSamples(database, [
      { name: "celery", depth: 3, byPriority: { "0": 1, "3": 0, "6": 1, "9": 1 }, unacked: 0, oldestUnackedAgeS: null, sampledAt: 1000 },
      { name: "reports", depth: 1, byPriority: { "0": 1, "3": 0, "6": 0, "9": 0 }, unacked: 0, oldestUnackedAgeS: null, sampledAt: 1000 },
    ]);
    await insertQueueSamples(database, [
      { name: "celery", depth: 1, byPriority: { "0": 1, "3": 0, "6": 0, "9": 0 }, unacked: 2, oldestUnackedAgeS: 1.5, sampledAt: 1005 },
    ]);
    // A late sample does not overwrite a newer one.
    await insertQueueSamples(database, [
      { name: "celery", depth: 99, byPriority: {}, unacked: 0, oldestUnackedAgeS: null, sampledAt: 1001 },
    ]);
    const queues = await listQueues(database);
    expect(queues.map((q) => [q.name, q.depth, q.unacked])).toEqual([
      ["celery", 1, 2],
      ["reports", 1, 0],
    ]);
  });

  test("worker configuration: the latest reading, a bounded memory history, p99 runtimes per task name from the worker's latest tasks", async () => {
    const database = get();
    const settings = workerSettings(JSON.parse(readFileSync(join(import.meta.dir, "../fixtures/worker-config/risky.json"), "utf8")).replies);
    if (!settings) throw new Error("no settings in the capture");
    const t0 = Date.UTC(2026, 10, 25);
    for (let i = 0; i < MEMORY_SAMPLES_KEPT + 12; i++) {
      await saveWorkerConfig(database, "cap1@lab", { ...settings, maxrss_kb: 40_000 + i }, null, new Date(t0 + i * 600_000));
    }
    expect((await getWorkerConfig(database, "cap1@lab"))?.config.task_time_limit).toBe(7200);
    const memory = await memoryHistory(database, "cap1@lab");
    expect(memory).toHaveLength(MEMORY_SAMPLES_KEPT);
    expect(memory[0]?.maxrssKb).toBe(40_012);
    expect(memory.at(-1)?.maxrssKb).toBe(40_000 + MEMORY_SAMPLES_KEPT + 11);
    expect(await workerVisibilityTimeouts(database)).toEqual(new Map([["cap1@lab", 3600]]));
    // The replayed capture: cap1@lab ran these names; p99 is at most the longest run.
    const runtimes = await workerRuntimes(database, "cap1@lab");
    const stored = await database.rows<{ name: string; max: number }>(sql`select name, max(runtime) as max from tasks where worker = 'cap1@lab' and runtime is not null group by name`);
    expect(runtimes.map((r) => r.name).sort()).toEqual(stored.map((r) => r.name).sort());
    for (const r of runtimes) expect(r.p99S).toBeLessThanOrEqual(Number(stored.find((x) => x.name === r.name)?.max));
    expect(await workerRuntimes(database, "never@lab")).toEqual([]);
  });

  test("expired tasks: merged in any order, listed by reason, counted by name; broker samples pruned past their keep", async () => {
    const database = get();
    const expiredEvents = captureMessages(readCapture("celery-5.2-redis-expired.jsonl")).flatMap((m) => decodeRawMessage(m).events);
    // Reversed, and the whole again: the result backend's REVOKED and the event stream's agree.
    await writeBatch(database, buildBatch([...expiredEvents].reverse()));
    await writeBatch(database, buildBatch(expiredEvents));
    const want = taskPatchesFromEvents(expiredEvents);
    for (const [id, w] of want) expect(await getTask(database, id)).toMatchObject({ state: "REVOKED", expired: true, name: w.name });
    const listed = await listTasks(database, { reason: "expired", limit: 50 });
    expect(listed.tasks.map((t) => t.id).sort()).toEqual([...want.keys()].sort());
    expect((await listTasks(database, { state: "REVOKED", limit: 500 })).tasks.filter((t) => !t.expired).length).toBeGreaterThan(0);
    const groups = await expiredSince(database, new Date(0));
    expect(groups).toEqual([expect.objectContaining({ name: "labapp.add", count: 2, queues: ["celery"] })]);
    expect(await expiredSince(database, new Date(0), "labapp.echo")).toEqual([]);

    const sample = (at: number): BrokerHealth => ({
      kind: "redis", version: "7.0.15", uptimeS: at, usedMemoryBytes: 1000 + at, maxMemoryBytes: 2000, maxMemoryPolicy: "allkeys-lru",
      connectedClients: 3, opsPerSecond: 1.5, evictedKeys: 0, memoryAlarm: null, diskAlarm: null, diskFreeBytes: null, sampledAt: at,
    });
    for (const at of [1000, 1010, 1020, 1030]) await insertBrokerSample(database, "default", sample(at), 15);
    const [latest] = await latestBrokerSamples(database);
    expect(latest).toMatchObject({ broker: "default", usedMemoryBytes: 2030, maxMemoryPolicy: "allkeys-lru", maxMemoryBytes: 2000 });
    // Kept: samples at most 15 s older than the newest.
    expect((await brokerHistory(database, "default", new Date(0))).map((r) => r.uptimeS)).toEqual([1020, 1030]);
  });
}
