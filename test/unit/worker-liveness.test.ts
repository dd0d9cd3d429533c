import { describe, expect, test } from "bun:test";
import type { CeleryEvent } from "../../src/celery/event.ts";
import { workerLiveness, workerPatchesFromEvents } from "../../src/state/worker.ts";

const ev = (type: string, localReceived: number, fields: Record<string, unknown> = {}): CeleryEvent => ({
  type,
  hostname: "w1@h",
  timestamp: localReceived,
  localReceived,
  source: "events",
  fields: { freq: 2, ...fields },
  ...(type.startsWith("task-") ? { uuid: "t" } : {}),
});

describe("Celery's heartbeat rule", () => {
  test("alive until last heartbeat + freq × 2 (receiver's clock)", () => {
    const w = { lastHeartbeatAt: 100, offlineAt: null, freq: 2 };
    expect(workerLiveness(w, 103.9).status).toBe("online");
    expect(workerLiveness(w, 104).status).toBe("offline");
    expect(workerLiveness(w, 104).reason).toBe("heartbeat_lost");
  });

  test("worker-offline is a clean shutdown; a later heartbeat means it came back", () => {
    expect(workerLiveness({ lastHeartbeatAt: 100, offlineAt: 101, freq: 2 }, 101.5)).toMatchObject({ status: "offline", reason: "shutdown" });
    expect(workerLiveness({ lastHeartbeatAt: 102, offlineAt: 101, freq: 2 }, 102.5).status).toBe("online");
  });

  test("task events count as signs of life; task-sent (a producer) does not", () => {
    const patches = workerPatchesFromEvents([ev("worker-heartbeat", 100), ev("task-started", 103)]);
    expect(patches.get("w1@h")?.lastHeartbeatAt).toBe(103);
    const producer = workerPatchesFromEvents([{ ...ev("task-sent", 100), hostname: "gen1@h" }]);
    expect(producer.size).toBe(0);
  });

  test("stats come from the latest worker event whatever the arrival order", () => {
    const a = ev("worker-heartbeat", 100, { processed: 5 });
    const b = ev("worker-heartbeat", 102, { processed: 9 });
    expect(workerPatchesFromEvents([a, b]).get("w1@h")?.processed).toBe(9);
    expect(workerPatchesFromEvents([b, a]).get("w1@h")?.processed).toBe(9);
  });
});
