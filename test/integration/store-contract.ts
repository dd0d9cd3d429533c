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
import { insertQueueSamples, writeBatch } from "../../src/store/writes.ts";
import { listQueues } from "../../src/store/queries/queues.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";

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
}
