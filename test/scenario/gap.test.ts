/**
 * event_gap on the real thing: Crisper (its own process) is frozen with
 * SIGSTOP while tasks finish; a burst overflows its PUB/SUB output buffer
 * and Redis cuts it, as it does to any subscriber that falls behind. After
 * SIGCONT the gap is recorded and reconciled: the tasks that finished unseen
 * get their final state from the result backend.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { sendTasks } from "../support/celery.ts";
import { waitUntil } from "../support/processes.ts";
import { scenarios } from "../support/scenario.ts";

// A small PUB/SUB output buffer, so a modest burst is enough to get cut.
const servers = scenarios("gap", { store: "postgres", redisArgs: ["--client-output-buffer-limit", "pubsub 256kb 128kb 5"] });
beforeAll(() => servers.start());
afterAll(() => servers.stop());

test("frozen and cut off by Redis: the gap is recorded and reconciled from the result backend", async () => {
  // The first scenario: its broker is Redis db 0 (the `/0.` in the event channels below).
  const s = await servers.scenarioProcess({
    ENABLE_EVENTS_INTERVAL_S: "1",
    DETECT_INTERVAL_S: "0.5",
    // Resolved once the stream has been up this long (alert-noise.test.ts shows the merging).
    EVENT_GAP_MERGE_S: "2",
  });
  const { crisper: c, lab } = s;
  await s.worker("gap@lab", { concurrency: 3 });
  const ids = await sendTasks(lab, [1, 2, 3].map(() => ({ task: "labapp.sleepy", args: [3] })));
  await waitUntil(
    async () => {
      for (const id of ids) if ((await c.get(`/api/tasks/${id}`)).body?.task?.state !== "STARTED") return false;
      return true;
    },
    60_000,
    "tasks started",
    200,
  );

  c.pause();
  // The tasks finish while Crisper is frozen; a burst then overflows its buffer.
  const raw = new Redis(lab.brokerUrl);
  const junk = "x".repeat(64 * 1024);
  // Both streams are cut: the result backend's publishes are lost too, so the
  // final states can only come back by reading the stored results.
  for (let i = 0; i < 300; i++) {
    await raw.publish("/0.celeryev/worker.heartbeat", junk);
    await raw.publish("celery-task-meta-burst", junk);
  }
  await Bun.sleep(5000);
  const cut = (await raw.client("LIST")) as string;
  await raw.quit();
  expect(cut).not.toContain("name=crisper-events");
  expect(cut).not.toContain("name=crisper-result-backend");
  c.resume();
  const resumedAt = performance.now();

  let gap: any;
  await waitUntil(
    async () => {
      gap = (await c.get("/api/alerts?status=all&kind=event_gap")).body.alerts[0];
      return gap?.details?.interrupted_since === null && gap.details.recovered >= 3;
    },
    120_000,
    "event_gap reconciled",
    200,
  );
  console.log(`[ttd] event_gap reconciled: ${((performance.now() - resumedAt) / 1000).toFixed(1)} s after the stream returned`);
  await waitUntil(
    async () => {
      gap = (await c.get("/api/alerts?status=all&kind=event_gap")).body.alerts[0];
      return gap?.status === "resolved";
    },
    60_000,
    "event_gap resolved",
    200,
  );
  expect(gap.details.recovered).toBeGreaterThanOrEqual(3);
  expect(gap.details.recovered_tasks).toEqual(expect.arrayContaining(ids));
  expect(gap.summary).toContain("interrupted");
  for (const id of ids) expect((await c.get(`/api/tasks/${id}`)).body.task.state).toBe("SUCCESS");
  // Missing heartbeats while Crisper itself was cut off are not a dead worker.
  const alerts = (await c.get("/api/alerts?status=all")).body.alerts;
  expect(alerts.map((a: any) => a.kind)).toEqual(["event_gap"]);
}, 300_000);
