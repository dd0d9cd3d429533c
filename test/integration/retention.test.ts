/**
 * Retention in a running `crisper serve` (embedded PGlite, a real Redis):
 * with TASK_RETENTION=60s and a pass every second, tasks last heard of more
 * than a minute ago go with their events (404 from the API), newer ones stay;
 * resolved alerts past ALERT_RETENTION go, open ones stay whatever their age;
 * the per-minute statistics of the tasks it deleted stay as they were.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { sql } from "../../src/store/database.ts";
import { writeBatch } from "../../src/store/writes.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";
import { type CrisperUnderTest, startCrisper } from "../support/crisper.ts";
import { waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

/** Tasks of the capture (two days before this test's clock at least): older than a minute. */
const FLAKY = "c1f5847a-a3de-43a7-8d91-07bc215c2d09";
const ECHO = "120f0b65-0f80-4fb4-8296-3d606ee33f69";
const FRESH = "retention-fresh-task";

let redis: RedisServer;
let crisper: CrisperUnderTest;
let dataDir: string;

beforeAll(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), "crisper-retention-"));
  crisper = await startCrisper({
    BROKER_URL: redis.url,
    DATA_DIR: dataDir,
    TASK_RETENTION: "60s",
    ALERT_RETENTION: "60s",
    RETENTION_INTERVAL_S: "1",
  });
});

afterAll(async () => {
  await crisper?.stop();
  await redis?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const count = async (query: ReturnType<typeof sql>) => Number((await crisper.database.rows<{ n: number }>(query))[0]?.n);

test("tasks and resolved alerts past their retention go; newer tasks and open alerts stay", async () => {
  const db = crisper.database;
  // Old tasks through the collector's own write, from a real capture.
  const events = captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")).flatMap((m) => decodeRawMessage(m).events);
  // A task heard of just now, and alerts of every age and status.
  await db.rows(sql`
    insert into tasks (id, name, state, state_key, first_seen_at, last_event_at)
    values (${FRESH}, 'app.fresh', 'SUCCESS', 0, now() - interval '10 min', now())`);
  await db.rows(sql`
    insert into alerts (kind, subject, severity, status, summary, details, opened_at, updated_at, resolved_at) values
      ('worker_offline', 'old-resolved', 'warning', 'resolved', 'old, resolved', '{}', now() - interval '1 h', now() - interval '1 h', now() - interval '10 min'),
      ('worker_offline', 'new-resolved', 'warning', 'resolved', 'resolved just now', '{}', now() - interval '1 h', now(), now()),
      ('worker_offline', 'old-open', 'warning', 'open', 'open for an hour', '{}', now() - interval '1 h', now() - interval '1 h', null)`);
  const batch = buildBatch(events);
  const eventRows = new Set(batch.events.map((e) => `${e.taskId} ${e.key}`)).size;
  await writeBatch(db, batch);
  expect((await crisper.get(`/api/tasks/${FLAKY}`)).status).toBe(200);

  // The pass every second deletes them.
  await waitUntil(async () => (await crisper.get(`/api/tasks/${FLAKY}`)).status === 404, 60_000, "the old task deleted");
  await waitUntil(async () => (await count(sql`select count(*)::int as n from alerts where subject = 'old-resolved'`)) === 0, 30_000, "the old resolved alert deleted");

  expect((await crisper.get(`/api/tasks/${ECHO}`)).status).toBe(404);
  expect(await count(sql`select count(*)::int as n from events where task_id in (${FLAKY}, ${ECHO})`)).toBe(0);
  expect(await count(sql`select count(*)::int as n from tasks where id <> ${FRESH}`)).toBe(0);
  const fresh = await crisper.get(`/api/tasks/${FRESH}`);
  expect(fresh.status).toBe(200);
  expect(fresh.body.task.name).toBe("app.fresh");
  const subjects = (await db.rows<{ subject: string }>(sql`select subject from alerts order by subject`)).map((r) => r.subject);
  expect(subjects).toEqual(["new-resolved", "old-open"]);

  // Counted in /metrics, with the database's size; the overview says what is kept.
  const metrics = await (await fetch(`${crisper.url}/metrics`)).text();
  const value = (line: RegExp) => Number(metrics.split("\n").find((l) => line.test(l))?.split(" ").pop());
  expect(value(/^crisper_retention_deleted_total\{kind="tasks"\}/)).toBe(new Set(batch.tasks.map((t) => t.id)).size);
  expect(value(/^crisper_retention_deleted_total\{kind="events"\}/)).toBe(eventRows);
  expect(value(/^crisper_retention_deleted_total\{kind="alerts"\}/)).toBe(1);
  expect(value(/^crisper_database_bytes /)).toBeGreaterThan(1_000_000);
  const overview = await (await fetch(`${crisper.url}/`)).text();
  expect(overview).toContain("tasks and their events kept 1m after their last event, resolved alerts 1m");
  expect(overview).toMatch(/Database: \d+(\.\d)? MB/);
}, 120_000);

test("the statistics of the minutes retention pruned stay as they were", async () => {
  // The capture again, moved to half a minute ago (order kept, squeezed into
  // 10 s): within TASK_RETENTION when written, past it some 30 s later.
  const events = captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")).flatMap((m) => decodeRawMessage(m).events);
  const newest = Math.max(...events.map((e) => e.timestamp));
  const span = newest - Math.min(...events.map((e) => e.timestamp));
  const squeeze = span > 10 ? 10 / span : 1;
  const end = Date.now() / 1000 - 30;
  const moved = events.map((e) => ({ ...e, timestamp: end - (newest - e.timestamp) * squeeze, localReceived: end - (newest - e.timestamp) * squeeze }));
  await writeBatch(crisper.database, buildBatch(moved));

  const window = `from=${Math.floor(end - 120)}&to=${Math.ceil(end + 120)}&bucket=60`;
  const counted = (answer: { buckets: { succeeded: number; failed: number }[] }) => answer.buckets.reduce((n, b) => n + b.succeeded + b.failed, 0);
  // The rollup (every 5 s) counts them while their tasks are there.
  let before: { buckets: Record<string, unknown>[] } = { buckets: [] };
  await waitUntil(
    async () => {
      before = (await crisper.get(`/api/stats?${window}`)).body;
      return counted(before as never) > 0;
    },
    60_000,
    "the statistics of the moved capture",
  );
  const tasks = new Set(moved.flatMap((e) => (e.uuid ? [e.uuid] : [])));
  expect(counted(before as never)).toBeGreaterThan(5);

  // Then retention deletes every one of those tasks…
  await waitUntil(async () => (await count(sql`select count(*)::int as n from tasks where id <> ${FRESH}`)) === 0, 60_000, "the moved tasks deleted");
  for (const id of [...tasks].slice(0, 3)) expect((await crisper.get(`/api/tasks/${id}`)).status).toBe(404);
  // …and their minutes keep their counts and percentiles, through the next rollups and passes.
  await Bun.sleep(6000);
  expect((await crisper.get(`/api/stats?${window}`)).body).toEqual(before);
}, 120_000);
