/**
 * The JSON API over a store filled from the real captures (PGlite): happy
 * paths, errors, and hostile input.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { logger } from "../../src/log.ts";
import type { Database } from "../../src/store/database.ts";
import { writeBatch } from "../../src/store/writes.ts";
import { createApp } from "../../src/web/app.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";
import { emptyStore, type TestStore } from "../support/store.ts";

let store: TestStore;
let database: Database;
let app: ReturnType<typeof createApp>;
const FLAKY = "c1f5847a-a3de-43a7-8d91-07bc215c2d09";
const ECHO = "120f0b65-0f80-4fb4-8296-3d606ee33f69";
const DUP = "7c50fa48-dbd7-42d5-a155-777ec02a207c";

beforeAll(async () => {
  store = await emptyStore("api");
  database = store.database;
  const events = [
    ...captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")),
    ...captureMessages(readCapture("celery-5.2-redis-faults.jsonl")),
  ].flatMap((m) => decodeRawMessage(m).events);
  await writeBatch(database, buildBatch(events));
  // The capture's clock: cap1@lab shut down cleanly, dup1/dup2 were killed.
  app = createApp({ database, log: logger("test", () => {}), now: () => 1795476100 });
});

afterAll(() => store?.remove());

const get = async (path: string) => {
  const res = await app.request(path);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

describe("GET /api/tasks/{id}", () => {
  test("a task with its events and one execution per run", async () => {
    const { status, body } = await get(`/api/tasks/${FLAKY}`);
    expect(status).toBe(200);
    expect(body.task).toMatchObject({ id: FLAKY, name: "labapp.flaky", state: "FAILURE", retries: 2, worker: "cap1@lab" });
    expect(body.task.executions.map((x: any) => [x.retries, x.state])).toEqual([
      [0, "RETRY"],
      [1, "RETRY"],
      [2, "FAILURE"],
    ]);
    expect(body.task.finished_at).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    expect(body.events.length).toBeGreaterThan(5);
    expect(body.events[0]).toHaveProperty("type");
    expect(body.events[0]).toHaveProperty("hostname");
    expect(body.events[0].timestamp).toMatch(/Z$/);
    expect(body.task.alerts).toEqual([]);
  });

  test("a duplicate execution shows two executions at retries 0", async () => {
    const { body } = await get(`/api/tasks/${DUP}`);
    expect(body.task.executions.map((x: any) => [x.worker, x.retries])).toEqual([
      ["dup1@lab", 0],
      ["dup2@lab", 0],
    ]);
  });

  test("an id never seen is a 404 with a hint, never PENDING", async () => {
    const { status, body } = await get("/api/tasks/00000000-0000-0000-0000-000000000000");
    expect(status).toBe(404);
    expect(body.error).toContain("never seen");
    expect(body.hint).toContain("PENDING");
    expect(JSON.stringify(body)).not.toContain('"state"');
  });

  test("hostile content comes back as data (JSON-escaped), untouched", async () => {
    const { body } = await get(`/api/tasks/${ECHO}`);
    expect(body.task.args).toContain("<script>alert(1)</script>");
    const raw = await (await app.request(`/api/tasks/${ECHO}`)).text();
    expect(raw).not.toContain("</script><");
  });

  test("an overlong id is a 400", async () => {
    expect((await get(`/api/tasks/${"x".repeat(300)}`)).status).toBe(400);
  });
});

describe("GET /api/tasks", () => {
  test("filters by state, name, worker, queue and q", async () => {
    expect((await get("/api/tasks?state=FAILURE")).body.tasks.map((t: any) => t.name).sort()).toEqual([
      "labapp.boom",
      "labapp.flaky",
      "labapp.suicide",
    ]);
    expect((await get("/api/tasks?state=failure&name=labapp.boom")).body.tasks).toHaveLength(1);
    expect((await get("/api/tasks?queue=reports")).body.tasks.map((t: any) => t.args)).toEqual(["(1,)"]);
    // The redelivered task finished last on dup2@lab: that is its worker now.
    expect((await get("/api/tasks?worker=dup2@lab")).body.tasks.map((t: any) => t.id)).toEqual([DUP]);
    expect((await get("/api/tasks?q=flaky%20dependency")).body.tasks.map((t: any) => t.id)).toEqual([FLAKY]);
    expect((await get(`/api/tasks?q=${FLAKY}`)).body.tasks.map((t: any) => t.id)).toEqual([FLAKY]);
  });

  test("pages with next_cursor, newest first, without repeats", async () => {
    const seen: string[] = [];
    let path = "/api/tasks?limit=3";
    let times: string[] = [];
    for (;;) {
      const { body } = await get(path);
      seen.push(...body.tasks.map((t: any) => t.id));
      times = times.concat(body.tasks.map((t: any) => t.first_seen_at));
      if (!body.next_cursor) break;
      path = `/api/tasks?limit=3&cursor=${body.next_cursor}`;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThan(10);
    expect(times).toEqual([...times].sort().reverse());
  });

  test("since/until bound by time", async () => {
    const all = (await get("/api/tasks?limit=500")).body.tasks.length;
    const later = (await get("/api/tasks?limit=500&since=2026-11-23T23:20:30Z")).body.tasks.length;
    expect(later).toBeGreaterThan(0);
    expect(later).toBeLessThan(all);
  });

  test("bad parameters are 400s that say what is expected", async () => {
    for (const q of ["state=DONE", "limit=0", "limit=abc", "since=yesterday", "cursor=garbage", `name=${"n".repeat(300)}`]) {
      const { status, body } = await get(`/api/tasks?${q}`);
      expect(status).toBe(400);
      expect(body.error).toMatch(/^(state|limit|since|cursor|name): /);
    }
    expect((await get("/api/tasks?limit=100000")).status).toBe(200);
  });
});

describe("workers, queues, health", () => {
  test("workers: a clean shutdown and two killed workers are offline, with the reason", async () => {
    const { body } = await get("/api/workers");
    const byName = Object.fromEntries(body.workers.map((w: any) => [w.hostname, w]));
    expect(byName["cap1@lab"]).toMatchObject({ status: "offline", offline_reason: "shutdown", processed: 11, sw_ver: "5.2.6" });
    expect(byName["dup1@lab"]).toMatchObject({ status: "offline", offline_reason: "heartbeat_lost", freq_s: 2 });
    expect(Object.keys(byName).some((h) => h.startsWith("gen"))).toBe(false);
  });

  test("queues list (empty until sampled)", async () => {
    expect((await get("/api/queues")).body).toEqual({ queues: [] });
  });

  test("healthz and readyz", async () => {
    expect((await get("/healthz")).status).toBe(200);
    const ready = await get("/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.database).toBe("ok");
  });

  test("unknown paths are JSON 404s", async () => {
    const { status, body } = await get("/api/nope");
    expect(status).toBe(404);
    expect(body.error).toContain("no such path");
  });
});

describe("GET /metrics", () => {
  test("Prometheus text with celery-exporter's gauge names, read from the store", async () => {
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('celery_worker_up{hostname="cap1@lab"} 0');
    expect(text).toContain("# TYPE celery_task_succeeded_total counter");
    expect(text).toContain("crisper_buffer_dropped_total");
  });
});

describe("without CRISPER_AUTH, Crisper is read-only", () => {
  test("revoke and schedule changes are refused with 403, saying how to allow them", async () => {
    const post = (path: string, body: unknown) =>
      app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    for (const res of [
      await post(`/api/tasks/${FLAKY}/revoke`, { terminate: true }),
      await post("/api/schedules", { name: "n", task: "t", every_s: 60 }),
      await app.request("/api/schedules/n", { method: "DELETE" }),
      await app.request(`/tasks/${FLAKY}/revoke`, { method: "POST", body: new URLSearchParams({ terminate: "1" }) }),
    ]) {
      expect(res.status).toBe(403);
      expect((await res.json()).error).toContain("read-only: set CRISPER_AUTH");
    }
  });
});
