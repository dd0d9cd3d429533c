/**
 * Hostile traffic on a real broker, collected by a real `crisper serve` (its
 * own process) into a real PostgreSQL: the messages that crashed Crisper,
 * poison events the database would refuse, and a seeded fuzz of the real
 * captures, with well-formed tasks mixed in. Crisper stays up, every
 * well-formed task is stored, the poison costs only itself (no batch is ever
 * refused by the database), and it is all counted in /metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import postgres from "postgres";
import { TrafficGenerator, type PublishedMessage } from "../../bench/traffic.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";
import { type CrisperProcess, startCrisperProcess } from "../support/crisper.ts";
import { CRASH_MESSAGES, WireFuzzer, fuzzSeed, poisonEvents } from "../support/hostile-wire.ts";
import { type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

let redis: RedisServer;
let pg: PostgresServer;
let crisper: CrisperProcess;
let publisher: Redis;
let sql: postgres.Sql;
let dataDir: string;
let published = 0;

beforeAll(async () => {
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  dataDir = mkdtempSync(join(tmpdir(), "crisper-hostile-"));
  crisper = await startCrisperProcess({
    BROKER_URL: redis.url,
    RESULT_BACKEND_URL: `redis://127.0.0.1:${redis.port}/1`,
    DATABASE_URL: pg.url,
    DATA_DIR: dataDir,
    ENABLE_EVENTS: "false",
    LOG_LEVEL: "warn",
  });
  publisher = new Redis(redis.url);
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
}, 120_000);

afterAll(async () => {
  publisher?.disconnect();
  await sql?.end();
  await crisper?.stop();
  await Promise.all([pg?.stop(), redis?.stop()]);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Sums a /metrics series over the lines that carry all the given labels. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

async function metrics(): Promise<string> {
  const res = await fetch(`${crisper.url}/metrics`).catch((e: Error) => {
    throw new Error(`crisper does not answer (${e.message}); its last output:\n${crisper.output.text()}`);
  });
  expect(res.status).toBe(200);
  return res.text();
}

/** Publishes in one pipeline (one connection: order kept), counting what Crisper should receive. */
async function publish(messages: readonly { channel: string; data: string }[]) {
  const p = publisher.pipeline();
  for (const m of messages) p.publish(m.channel, m.data);
  await p.exec();
  published += messages.length;
}

/**
 * Waits until Crisper has decoded everything published: Redis would cut a
 * subscriber whose output buffer passed 32 MB, and fuzzed messages are big.
 */
async function caughtUp() {
  await waitUntil(
    async () => metric(await metrics(), "crisper_messages_received_total") >= published,
    60_000,
    `crisper receives the ${published} messages published`,
    100,
  );
}

async function storedSucceeded(ids: readonly string[]): Promise<number> {
  const [row] = await sql`select count(*)::int as n from tasks where id = any(${ids}) and state = 'SUCCESS'`;
  return row?.n ?? 0;
}

/** Well-formed tasks (four events each, as Celery sends them), interleaved with `others`. */
function mixIn(g: TrafficGenerator, ids: string[], others: readonly { channel: string; data: string }[], every: number, now: number) {
  const out: { channel: string; data: string }[] = [];
  others.forEach((m, i) => {
    out.push(m);
    if (i % every === 0) {
      const id = crypto.randomUUID();
      ids.push(id);
      out.push(...g.task(id, now));
    }
  });
  return out;
}

describe("the crash messages and poison events, among good events", () => {
  test("Crisper stays up, stores every good event, stores each poison event cleaned, and counts it", async () => {
    const now = Date.now() / 1000;
    const g = new TrafficGenerator();
    const ids: string[] = [];
    const poison = poisonEvents(now, "r");
    const hostile = [CRASH_MESSAGES.contentTypeTrap, CRASH_MESSAGES.deepBody].map((data) => ({ channel: "/0.celeryev/task.multi", data }));
    // Each hostile message twice, each among good tasks: 200 tasks, 800 events.
    const messages = mixIn(g, ids, [...hostile, ...poison, ...hostile, ...poison], 1, now);
    while (ids.length < 200) {
      const id = crypto.randomUUID();
      ids.push(id);
      messages.push(...g.task(id, now));
    }
    messages.push(...g.flush());
    await publish(messages);
    await caughtUp();
    await waitUntil(async () => (await storedSucceeded(ids)) === ids.length, 60_000, "every good task stored", 200);

    const [events] = await sql`select count(*)::int as n from events where task_id = any(${ids})`;
    expect(events?.n).toBe(ids.length * 4);
    expect((await crisper.get("/healthz")).status).toBe(200);

    const m = await metrics();
    // The crash messages, each twice, and the result whose status is "constructor".
    expect(metric(m, "crisper_messages_rejected_total", { reason: "not_envelope" })).toBe(2);
    expect(metric(m, "crisper_messages_rejected_total", { reason: "not_an_event" })).toBe(2);
    expect(metric(m, "crisper_messages_rejected_total", { reason: "unknown_event_type" })).toBe(2);
    expect(metric(m, "crisper_messages_rejected_total", { reason: "decoder_error" })).toBe(0);
    expect(metric(m, "crisper_event_fields_dropped_total", { field: "timestamp", reason: "out_of_range" })).toBe(6);
    expect(metric(m, "crisper_event_fields_dropped_total", { field: "date_done", reason: "out_of_range" })).toBe(2);
    for (const field of ["retries", "pid", "active", "processed"]) {
      expect(metric(m, "crisper_event_fields_dropped_total", { field, reason: "not_an_integer" }), field).toBe(2);
    }
    // No batch was refused: no poison reached the database.
    expect(metric(m, "crisper_store_rejected_events_total")).toBe(0);
    expect(metric(m, "crisper_store_errors_total", { kind: "refused" })).toBe(0);

    // Each poison event is stored, cleaned or dated on arrival.
    const stored = await sql`select id, name, args, retries, exception, first_seen_at from tasks where id like 'poison-%'`;
    const byId = new Map(stored.map((r) => [r.id, r]));
    for (const p of poison) if (p.storedId) expect(byId.has(p.storedId), p.what).toBe(true);
    for (const id of ["poison-1970-r", "poison-future-r", "poison-ahead-r"]) {
      const seen = new Date(byId.get(id)?.first_seen_at).getTime() / 1000;
      expect(Math.abs(seen - now), id).toBeLessThan(600);
    }
    expect(byId.get("poison-int-r")?.retries).toBeNull();
    expect(byId.get("poison-proto-r")).toMatchObject({ name: "poison.task", exception: null });
    const huge = byId.get("poison-huge-r");
    expect(String(huge?.args).length).toBeLessThan(9000);
    expect(String(huge?.args)).toContain("cut by Crisper");
    const [fat] = await sql`select max(octet_length(fields::text))::int as n from events where task_id = 'poison-huge-r'`;
    expect(fat?.n).toBeLessThan(70_000);
    const [proto] = await sql`select fields::jsonb ? '__proto__' as has from events where task_id = 'poison-proto-r'`;
    expect(proto?.has).toBe(true);
    const [worker] = await sql`select active, processed, pid from workers where hostname = 'poison-worker-r@lab'`;
    expect(worker).toMatchObject({ active: null, processed: null, pid: 7 });

    // And they read back through the API and the pages.
    const api = await crisper.get(`/api/tasks/${encodeURIComponent("poison-nul-r-\uFFFD-x")}`);
    expect(api.status).toBe(200);
    expect((await crisper.get("/api/tasks/poison-proto-r")).body.task.name).toBe("poison.task");
    for (const page of ["/", "/tasks", "/tasks/poison-huge-r", "/tasks/poison-proto-r", "/workers"]) {
      expect((await fetch(crisper.url + page)).status, page).toBe(200);
    }
  }, 120_000);
});

describe("a seeded fuzz of the real captures, with well-formed tasks mixed in", () => {
  const MUTATIONS = Number(process.env.FUZZ_MUTATIONS) || 20_000;

  test(`${MUTATIONS} mutated messages: Crisper lives, every well-formed task is stored, pages answer`, async () => {
    const seed = fuzzSeed();
    console.log(`collector fuzz: seed ${seed} (FUZZ_SEED=${seed} replays it), ${MUTATIONS} mutated messages`);
    const captures = [...captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")), ...captureMessages(readCapture("celery-5.2-redis-faults.jsonl"))];
    const fuzzer = new WireFuzzer(seed, captures);
    const g = new TrafficGenerator(0, ["fuzz-a@lab", "fuzz-b@lab"]);
    const ids: string[] = [];
    const started = performance.now();
    let bytes = 0;
    const CHUNK = 1000;
    for (let sent = 0; sent < MUTATIONS; sent += CHUNK) {
      const now = Date.now() / 1000;
      const mutated: PublishedMessage[] = [];
      for (let i = 0; i < Math.min(CHUNK, MUTATIONS - sent); i++) {
        const m = fuzzer.next();
        mutated.push({ channel: m.channel, data: typeof m.data === "string" ? m.data : new TextDecoder().decode(m.data) });
      }
      // One well-formed task per twenty mutated messages.
      const chunk = mixIn(g, ids, mutated, 20, now);
      if (sent + CHUNK >= MUTATIONS) chunk.push(...g.flush());
      for (const m of chunk) bytes += m.data.length;
      await publish(chunk);
      await caughtUp();
    }
    await waitUntil(async () => (await storedSucceeded(ids)) === ids.length, 90_000, `all ${ids.length} well-formed tasks stored`, 250);
    const seconds = (performance.now() - started) / 1000;

    expect((await crisper.get("/healthz")).status).toBe(200);
    for (const page of ["/", "/tasks", "/workers", "/queues", "/alerts", "/api/tasks", "/api/workers"]) {
      expect((await fetch(crisper.url + page)).status, page).toBe(200);
    }
    const m = await metrics();
    const reasons = [...m.matchAll(/^crisper_messages_rejected_total\{reason="(\w+)"\} (\d+)/gm)].map(([, r, n]) => `${r} ${n}`);
    const drops = [...m.matchAll(/^crisper_event_fields_dropped_total\{field="(\w+)",reason="(\w+)"\} (\d+)/gm)].map(([, f, r, n]) => `${f}/${r} ${n}`);
    console.log(
      `collector fuzz: ${published} messages (${(bytes / 2 ** 20).toFixed(0)} MB, ${ids.length} well-formed tasks) collected in ${seconds.toFixed(1)} s; ` +
        `rejected: ${reasons.join(", ")}; fields dropped: ${drops.join(", ")}`,
    );
    expect(metric(m, "crisper_messages_rejected_total", { reason: "decoder_error" })).toBe(0);
    expect(metric(m, "crisper_store_rejected_events_total")).toBe(0);
    expect(metric(m, "crisper_store_errors_total", { kind: "refused" })).toBe(0);
    expect(metric(m, "crisper_buffer_dropped_total")).toBe(0);
    expect(metric(m, "crisper_stream_disconnects_total")).toBe(0);
  }, 240_000);
});
