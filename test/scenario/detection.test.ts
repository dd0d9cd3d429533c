/**
 * Detection against the real thing: Debian's Celery 5.2 workers and Beat,
 * redis-server, PostgreSQL, and Crisper as `crisper serve` runs it. Each
 * scenario causes one silent failure and waits for its alert; the time to
 * detect is printed (`[ttd]` lines). Time limits here are generous on
 * purpose: the targets are measured, not asserted, so a busy machine passes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type LabSettings, sendTasks } from "../support/celery.ts";
import { waitUntil } from "../support/processes.ts";
import { timeToAlert, victimHoldingPrefetched } from "../support/detection.ts";
import { QUICK_INTERVALS, scenarios } from "../support/scenario.ts";

const servers = scenarios("detection", { store: "postgres" });
beforeAll(() => servers.start());
afterAll(() => servers.stop());

/** A fresh Redis db, database and Crisper for one scenario. */
async function scenario(env: Record<string, string> = {}, settings: Partial<LabSettings> = {}) {
  const s = await servers.scenario({ ...QUICK_INTERVALS, ...env }, settings);
  return Object.assign(s, {
    alerts: async (status = "all") => (await s.crisper.get(`/api/alerts?status=${status}&limit=500`)).body.alerts as any[],
    task: async (id: string) => (await s.crisper.get(`/api/tasks/${id}`)).body,
  });
}

const until = (what: string, check: () => Promise<boolean>, ms = 60_000) => waitUntil(check, ms, what, 200);

describe("detection on real Celery", () => {
  test("a worker SIGKILLed mid-task: worker_offline, task_lost, and its prefetched messages named", async () => {
    const s = await scenario();
    const { worker: w, running, prefetched, held } = await victimHoldingPrefetched(s);
    expect(held.active_tasks.map((t: any) => t.id)).toEqual([running]);
    await s.crisper.detector.nextPass();
    expect((await s.alerts()).length).toBe(0);

    const killedAt = performance.now();
    await w.kill();
    const lost = await timeToAlert(s, "task_lost", running as string, killedAt);
    expect(lost.alert).toMatchObject({ status: "open", severity: "critical", details: { worker: "victim@lab", state: "STARTED" } });
    const offline = (await s.alerts()).find((a) => a.kind === "worker_offline");
    expect(offline).toMatchObject({ subject: "victim@lab", status: "open" });
    const stranded = await timeToAlert(s, "prefetched_stranded", "victim@lab", killedAt);
    expect([...stranded.alert.details.task_ids].sort()).toEqual([...prefetched].sort());
    expect(stranded.alert.details.returns_at).not.toBeNull();
    // The task carries its alert.
    expect((await s.task(running as string)).task.alerts.map((a: any) => a.kind)).toEqual(["task_lost"]);

    // The worker comes back: worker_offline resolves; the task stays lost.
    const again = await s.worker("victim@lab", { prefetchMultiplier: 4 });
    await until("worker_offline resolved", async () => (await s.alerts("open")).every((a) => a.kind !== "worker_offline"));
    expect((await s.alerts("open")).some((a) => a.kind === "task_lost" && a.subject === running)).toBe(true);
    await again.kill();
  }, 180_000);

  test("a task longer than the visibility timeout runs twice: risk first, then duplicate_execution naming both workers", async () => {
    const s = await scenario({ BROKER_VISIBILITY_TIMEOUT: "4" }, { acksLate: true, visibilityTimeoutS: 4, prefetchMultiplier: 1 });
    await s.worker("dup1@lab");
    const [id] = await sendTasks(s.lab, [{ task: "labapp.sleepy", args: [14] }]);
    await until("started on dup1", async () => (await s.task(id as string))?.task?.state === "STARTED");
    const startedAt = performance.now();
    const risk = await timeToAlert(s, "visibility_timeout_risk", id as string, startedAt);
    expect(risk.alert.details).toMatchObject({ visibility_timeout_s: 4 });
    // Past the timeout, a second worker starting up restores the message and runs it again.
    await Bun.sleep(Math.max(0, 5000 - (performance.now() - startedAt)));
    await s.worker("dup2@lab");
    const secondStart = performance.now();
    const dup = await timeToAlert(s, "duplicate_execution", id as string, secondStart);
    expect([...dup.alert.details.workers].sort()).toEqual(["dup1@lab", "dup2@lab"]);
    const t = (await s.task(id as string)).task;
    expect(t.executions.map((x: any) => x.worker).sort()).toEqual(["dup1@lab", "dup2@lab"]);
    expect(t.alerts.map((a: any) => a.kind)).toContain("duplicate_execution");
    // Resolved once both runs have finished.
    await until("duplicate resolved", async () => (await s.alerts()).find((a) => a.kind === "duplicate_execution")?.status === "resolved", 60_000);
    // One alert for the one duplicate, however many events about it came after.
    await Bun.sleep(2000);
    await s.crisper.detector.nextPass();
    expect((await s.alerts()).filter((a) => a.kind === "duplicate_execution")).toHaveLength(1);
  }, 180_000);

  test("Celery Beat killed: the learned schedule goes missing and beat_missed opens", async () => {
    const s = await scenario();
    await s.worker("beatw@lab");
    const beat = await s.beat({ beatIntervalS: 1 });
    await until("schedule learned", async () => {
      const sch = (await s.crisper.get("/api/schedules")).body.schedules.find((x: any) => x.task === "labapp.canary");
      return sch?.source === "learned" && sch.status === "ok";
    });
    const sch = (await s.crisper.get("/api/schedules")).body.schedules.find((x: any) => x.task === "labapp.canary");
    expect(sch.expected_interval_s).toBeGreaterThan(0.8);
    expect(sch.expected_interval_s).toBeLessThan(1.2);
    const killedAt = performance.now();
    await beat.kill();
    const missed = await timeToAlert(s, "beat_missed", "labapp.canary", killedAt);
    console.log(`[ttd] beat_missed: ${(missed.ttd / sch.expected_interval_s).toFixed(1)} intervals`);
    expect(missed.alert.details).toMatchObject({ task: "labapp.canary", source: "learned" });
    // Beat back: the schedule is on time again and the alert resolves.
    const back = await s.beat({ beatIntervalS: 1 });
    await until("beat_missed resolved", async () => (await s.alerts("open")).every((a) => a.kind !== "beat_missed"));
    await back.kill();
  }, 180_000);

  test("task events off and auto-enable off: events_disabled names the worker", async () => {
    const s = await scenario({ ENABLE_EVENTS: "false", EVENTS_DISABLED_AFTER_S: "5" });
    await s.worker("silent@lab");
    const startedAt = performance.now();
    // Keep it busy: its heartbeats' `processed` grows, but no task event comes.
    const feeding = (async () => {
      for (let i = 0; i < 12; i++) {
        await sendTasks(s.lab, [{ task: "labapp.add", args: [i, i] }]);
        await Bun.sleep(1000);
      }
    })();
    const r = await timeToAlert(s, "events_disabled", "silent@lab", startedAt);
    expect(r.alert.summary).toContain("enable_events");
    await feeding;
  }, 180_000);

  test("a task STARTED past its configured threshold is stalled, and resolves when it finishes", async () => {
    const s = await scenario({ TASK_STALL_THRESHOLDS: "labapp.sleepy=3" });
    await s.worker("slow@lab");
    const [id] = await sendTasks(s.lab, [{ task: "labapp.sleepy", args: [8] }]);
    await until("started", async () => (await s.task(id as string))?.task?.state === "STARTED");
    const startedAt = performance.now();
    const r = await timeToAlert(s, "task_stalled", id as string, startedAt);
    expect(r.alert.details).toMatchObject({ threshold_s: 3, threshold_source: "configured", worker: "slow@lab" });
    await until("stall resolved", async () => (await s.alerts()).find((a) => a.kind === "task_stalled")?.status === "resolved");
    expect((await s.task(id as string)).task.state).toBe("SUCCESS");
  }, 120_000);

  test("a queue past its configured depth opens queue_backlog, and resolves once drained", async () => {
    const s = await scenario({ QUEUE_BACKLOG_DEPTH: "5" });
    await sendTasks(s.lab, [1, 2, 3, 4, 5, 6].map((i) => ({ task: "labapp.add", args: [i, i], queue: "reports" })));
    const sentAt = performance.now();
    const r = await timeToAlert(s, "queue_backlog", "reports", sentAt);
    expect(r.alert.details).toMatchObject({ queue: "reports", depth: 6, limit: 5, rule: "depth" });
    await s.worker("drain@lab", { queues: ["reports"] });
    await until("backlog resolved", async () => (await s.alerts()).find((a) => a.kind === "queue_backlog")?.status === "resolved");
  }, 120_000);

  test("a queue that grows faster than its worker drains it opens queue_backlog (growth), and resolves once it drains", async () => {
    const s = await scenario({ QUEUE_BACKLOG_WINDOW_S: "10", QUEUE_BACKLOG_MIN_GROWTH: "20" });
    // One slow worker drains about three tasks a second; eight a second arrive.
    await s.worker("slow@lab", { queues: ["ingest"], concurrency: 1 });
    const startedAt = performance.now();
    let sending = true;
    const sender = (async () => {
      while (sending) {
        const t0 = performance.now();
        await sendTasks(s.lab, Array.from({ length: 8 }, () => ({ task: "labapp.sleepy", args: [0.3], queue: "ingest" })));
        await Bun.sleep(Math.max(0, 1000 - (performance.now() - t0)));
      }
    })();
    try {
      const r = await timeToAlert(s, "queue_backlog", "ingest", startedAt, { timeoutMs: 90_000 });
      expect(r.alert.details).toMatchObject({ queue: "ingest", rule: "growth" });
      expect(r.alert.details.depth - r.alert.details.from_depth).toBeGreaterThanOrEqual(20);
    } finally {
      sending = false;
      await sender;
    }
    // Arrivals stop; the worker catches up and the alert resolves.
    await until("growth backlog resolved", async () => (await s.alerts()).find((a) => a.kind === "queue_backlog")?.status === "resolved", 120_000);
  }, 240_000);
});
