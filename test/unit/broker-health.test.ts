/**
 * The broker-health rules and expired tasks, on real captures: Redis's INFO
 * (maxmemory with allkeys-lru, then evicting) and Celery 5.2 discarding tasks
 * past their `expires`.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { healthFromInfo, parseInfo } from "../../src/broker/redis/health.ts";
import type { BrokerHealth } from "../../src/broker/port.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { type BrokerPoint, evictedInWindow, evictionRisk, MEMORY_HIGH_RATIO, memoryHigh } from "../../src/detect/checks/broker-health.ts";
import { detectTasksExpired, UNNAMED_TASKS } from "../../src/detect/checks/tasks-expired.ts";
import { mergeTaskPatch, taskPatchesFromEvents } from "../../src/state/task-patch.ts";
import type { ExpiredGroup } from "../../src/store/queries/expired.ts";
import { captureMessages, FIXTURES_DIR, readCapture } from "../fixtures/captures.ts";

const info = (name: string) => parseInfo(readFileSync(join(FIXTURES_DIR, name), "utf8"));
const atStart = healthFromInfo(info("redis-7.0-info-allkeys-lru.txt"), null, 1000);
const evicting = healthFromInfo(info("redis-7.0-info-evicting.txt"), null, 1003);

const point = (h: BrokerHealth, over: Partial<BrokerPoint> = {}): BrokerPoint => ({
  broker: "default",
  kind: h.kind,
  at: h.sampledAt,
  uptimeS: h.uptimeS,
  usedMemoryBytes: h.usedMemoryBytes,
  maxMemoryBytes: h.maxMemoryBytes,
  maxMemoryPolicy: h.maxMemoryPolicy,
  evictedKeys: h.evictedKeys,
  memoryAlarm: h.memoryAlarm,
  ...over,
});

describe("Redis INFO", () => {
  test("reads version, memory, limit, policy, clients and evictions", () => {
    expect(atStart).toMatchObject({
      kind: "redis",
      version: "7.0.15",
      maxMemoryBytes: 2 * 2 ** 20,
      maxMemoryPolicy: "allkeys-lru",
      connectedClients: 1,
      evictedKeys: 0,
    });
    expect(atStart.usedMemoryBytes).toBeGreaterThan(0);
    expect(evicting.evictedKeys).toBe(347);
  });

  test("CONFIG GET's policy wins over INFO's; maxmemory 0 is no limit", () => {
    expect(healthFromInfo(info("redis-7.0-info-allkeys-lru.txt"), "volatile-ttl", 0).maxMemoryPolicy).toBe("volatile-ttl");
    const unlimited = info("redis-7.0-info-allkeys-lru.txt");
    unlimited.set("maxmemory", "0");
    expect(healthFromInfo(unlimited, null, 0).maxMemoryBytes).toBeNull();
  });
});

describe("broker_eviction_risk", () => {
  test("maxmemory with allkeys-lru: a warning that names the policy and the fix", () => {
    const a = evictionRisk([point(atStart)]);
    expect(a?.subject).toBe("default");
    expect(a?.severity).toBeUndefined();
    expect(a?.summary).toContain("maxmemory-policy is allkeys-lru");
    expect(a?.summary).toContain("noeviction");
    expect(a?.details).toMatchObject({ maxmemory_policy: "allkeys-lru", evicting: false });
  });

  test("no maxmemory, or noeviction, is no risk", () => {
    expect(evictionRisk([point(atStart, { maxMemoryBytes: null })])).toBeNull();
    expect(evictionRisk([point(atStart, { maxMemoryPolicy: "noeviction" })])).toBeNull();
    expect(evictionRisk([point(atStart, { kind: "rabbitmq", maxMemoryPolicy: null })])).toBeNull();
  });

  test("evicted_keys rising within the window is critical, with the count", () => {
    const window = [point(atStart), point(evicting)];
    expect(evictedInWindow(window)).toBe(347);
    const a = evictionRisk(window);
    expect(a?.severity).toBe("critical");
    expect(a?.summary).toContain("is evicting keys: 347 evicted");
    expect(a?.details.evicting).toBe(true);
  });

  test("evictions before the window, not since: a warning again", () => {
    const later = point(evicting, { at: 2000, uptimeS: 1000 });
    expect(evictedInWindow([point(evicting), later])).toBe(0);
    expect(evictionRisk([point(evicting), later])?.severity).toBeUndefined();
  });

  test("a restart within the window counts from zero", () => {
    const restarted = point(evicting, { uptimeS: 1, evictedKeys: 5 });
    expect(evictedInWindow([point(evicting, { uptimeS: 500 }), restarted])).toBe(5);
  });
});

describe("broker_memory_high", () => {
  const max = 1000;
  const at = (used: number, open = false) => memoryHigh(point(atStart, { usedMemoryBytes: used, maxMemoryBytes: max }), open);

  test("opens at 80 % of maxmemory, not below", () => {
    expect(at(max * MEMORY_HIGH_RATIO)?.summary).toContain("uses 80 % of its maxmemory");
    expect(at(max * MEMORY_HIGH_RATIO - 1)).toBeNull();
  });

  test("an open alert holds down to 75 %, then resolves", () => {
    expect(at(760, true)).not.toBeNull();
    expect(at(749, true)).toBeNull();
  });

  test("the evicting capture (memory at its limit) opens it; no limit never does", () => {
    expect(memoryHigh(point(evicting), false)?.details.used_percent).toBeGreaterThanOrEqual(99);
    expect(memoryHigh(point(atStart, { maxMemoryBytes: null, usedMemoryBytes: 10 ** 12 }), false)).toBeNull();
  });

  test("RabbitMQ's memory alarm is critical whatever the ratio", () => {
    const a = memoryHigh(point(atStart, { kind: "rabbitmq", memoryAlarm: true, usedMemoryBytes: 1, maxMemoryBytes: max }), false);
    expect(a?.severity).toBe("critical");
    expect(a?.summary).toContain("memory alarm");
  });
});

describe("tasks that expire in the queue (celery-5.2-redis-expired.jsonl)", () => {
  const events = captureMessages(readCapture("celery-5.2-redis-expired.jsonl")).flatMap((m) => decodeRawMessage(m).events);
  const tasks = [...taskPatchesFromEvents(events).values()];

  test("each becomes REVOKED and expired, from the event stream and the result backend alike", () => {
    expect(tasks).toHaveLength(2);
    for (const t of tasks) expect(t).toMatchObject({ state: "REVOKED", expired: true, name: "labapp.add", queue: "celery", worker: "exp1@lab" });
    const fromBackend = events.filter((e) => e.source === "result-backend");
    expect(fromBackend.length).toBe(2);
    for (const e of fromBackend) expect(e.fields.expired).toBe(true);
    const fromStream = events.filter((e) => e.source === "events" && e.type === "task-revoked");
    expect(fromStream.map((e) => e.fields.expired)).toEqual([true, true]);
    // Celery announces nothing else for them: the worker never received them as tasks.
    expect(events.filter((e) => e.type === "task-received" || e.type === "task-started")).toEqual([]);
  });

  test("expired sticks in any merge order; a plain revoke is not expired", () => {
    const t = tasks[0];
    if (!t) throw new Error("no task");
    const plain = { ...t, expired: false };
    expect(mergeTaskPatch(plain, t).expired).toBe(true);
    expect(mergeTaskPatch(t, plain).expired).toBe(true);
    expect(mergeTaskPatch(plain, plain).expired).toBe(false);
  });

  const group = (over: Partial<ExpiredGroup>): ExpiredGroup => ({ name: "app.charge", count: 3, queues: ["payments"], firstAt: 900, lastAt: 950, ...over });

  test("tasks_expired holds through the quiet period, and ends after it", () => {
    const quiet = 600;
    expect(detectTasksExpired([group({})], new Map(), 950 + quiet, quiet)).toHaveLength(1);
    expect(detectTasksExpired([group({})], new Map(), 950 + quiet + 0.1, quiet)).toEqual([]);
  });

  test("one alert per name, with the episode's count and the queue; unnamed tasks grouped", () => {
    const episode = group({ count: 40, firstAt: 100 });
    const [a, b] = detectTasksExpired([group({}), group({ name: null, queues: [null] })], new Map([["app.charge", episode]]), 1000, 600);
    expect(a?.subject).toBe("app.charge");
    expect(a?.details).toMatchObject({ task: "app.charge", count: 40, queues: ["payments"] });
    expect(a?.summary).toContain("40 tasks app.charge expired in queue payments before a worker took them");
    expect(b?.subject).toBe(UNNAMED_TASKS);
    expect(b?.summary).toContain("expired in the queue");
  });
});
