/**
 * End to end, on real parts: redis-server, Debian's Celery 5.2 workers, and
 * Crisper (collector + web) on embedded PGlite and on a real PostgreSQL.
 * Workers run with Celery's defaults (task events off): Crisper switches them
 * on. Tasks come back through the JSON API with what the workers really did.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type CeleryProcess, type LabSettings, sendTasks, startWorker } from "../support/celery.ts";
import type { CrisperUnderTest } from "../support/crisper.ts";
import { waitUntil } from "../support/processes.ts";
import { type Scenario, scenarios } from "../support/scenario.ts";

const stores = [
  { kind: "PGlite", store: "pglite" },
  { kind: "PostgreSQL", store: "postgres" },
] as const;

for (const store of stores) {
  describe(`collector end to end on ${store.kind}`, () => {
    const servers = scenarios("e2e", { store: store.store });
    let s: Scenario<CrisperUnderTest>;
    let crisper: CrisperUnderTest;
    let lab: LabSettings;
    let worker: CeleryProcess | null = null;
    const ids: Record<string, string> = {};

    const task = async (id: string) => (await crisper.get(`/api/tasks/${id}`)).body;
    const until = (what: string, check: () => Promise<boolean>, ms = 30_000) => waitUntil(check, ms, what, 200);
    const finished = (id: string, state: string) =>
      until(`${id} ${state}`, async () => (await crisper.get(`/api/tasks/${id}`)).body?.task?.state === state);

    beforeAll(async () => {
      await servers.start();
      s = await servers.scenario({ ENABLE_EVENTS_INTERVAL_S: "1", QUEUE_SAMPLE_INTERVAL_S: "1" });
      ({ crisper, lab } = s);
    });

    afterAll(async () => {
      await worker?.stop();
      await servers.stop();
    });

    test("tasks queued before any worker show in /api/queues by priority", async () => {
      const queued = await sendTasks(lab, [
        { task: "labapp.add", args: [1, 1] },
        { task: "labapp.add", args: [3, 3], priority: 6 },
        { task: "labapp.add", args: [4, 4], priority: 9 },
        { task: "labapp.add", args: [5, 5], queue: "reports" },
      ]);
      ids.queued = queued[1] as string;
      await until("queues sampled", async () => {
        const { body } = await crisper.get("/api/queues");
        return body.queues.some((q: any) => q.name === "celery" && q.depth === 3) && body.queues.some((q: any) => q.name === "reports");
      });
      const { body } = await crisper.get("/api/queues");
      const celery = body.queues.find((q: any) => q.name === "celery");
      expect(celery).toMatchObject({ depth: 3, by_priority: { "0": 1, "3": 0, "6": 1, "9": 1 }, unacked: 0 });
      expect(body.queues.find((q: any) => q.name === "reports")).toMatchObject({ depth: 1 });
      // task-sent (task_send_sent_event) already made them known, as SENT... not PENDING.
      await until("sent task stored", async () => (await task(ids.queued as string))?.task?.state === "PENDING");
      expect((await task(ids.queued as string)).task).toMatchObject({ name: "labapp.add", args: "[3, 3]", queue: "celery" });
    });

    test("a worker on Celery's defaults is switched on; its tasks come back with what it did", async () => {
      worker = await startWorker({ ...lab, hostname: "e2e@lab", concurrency: 2, queues: ["celery", "reports"] });
      // Task events are off in this worker: the queued tasks' outcomes come from
      // the result backend, or from task events once enable_events reached it.
      await finished(ids.queued as string, "SUCCESS");
      expect((await task(ids.queued as string)).task.result).toBe("6");

      // Wait until the worker really sends task events (Crisper broadcast enable_events).
      await until("task events on", async () => {
        const [probe] = await sendTasks(lab, [{ task: "labapp.add", args: [0, 0] }]);
        await Bun.sleep(1000);
        const t = await task(probe as string);
        return (t?.events ?? []).some((e: any) => e.type === "task-started" && e.source === "events");
      }, 60_000);

      const [add, boom, echo, flaky] = await sendTasks(lab, [
        { task: "labapp.add", args: [2, 3] },
        { task: "labapp.boom", args: ["card declined"] },
        { task: "labapp.echo", args: ["<script>alert(1)</script> naïve ☃"] },
        { task: "labapp.flaky" },
      ]);
      await Promise.all([finished(add as string, "SUCCESS"), finished(boom as string, "FAILURE"), finished(echo as string, "SUCCESS"), finished(flaky as string, "FAILURE")]);

      const a = (await task(add as string)).task;
      expect(a).toMatchObject({ name: "labapp.add", state: "SUCCESS", args: "[2, 3]", kwargs: "{}", result: "5", worker: "e2e@lab", retries: 0 });
      for (const k of ["sent_at", "received_at", "started_at", "finished_at"]) expect(Date.parse(a[k])).toBeGreaterThan(Date.now() - 120_000);
      expect(Date.parse(a.finished_at)).toBeGreaterThanOrEqual(Date.parse(a.started_at));
      expect(a.runtime_s).toBeGreaterThanOrEqual(0);
      expect(a.executions).toHaveLength(1);
      expect(a.executions[0]).toMatchObject({ worker: "e2e@lab", state: "SUCCESS" });

      const b = (await task(boom as string)).task;
      expect(b.exception).toBe("ValueError('card declined')");
      expect(b.traceback).toContain("Traceback (most recent call last)");
      expect(b.traceback).toContain("ValueError: card declined");

      // Hostile text comes back exactly, as data (escaping is the pages' job).
      expect((await task(echo as string)).task.result).toBe("'<script>alert(1)</script> naïve ☃'");

      const f = (await task(flaky as string)).task;
      expect(f.retries).toBe(2);
      expect(f.exception).toContain("ConnectionError");
      // Both streams report each retry; the workers' own events say it twice.
      const events = (await task(flaky as string)).events;
      expect(events.filter((e: any) => e.type === "task-retried" && e.source === "events")).toHaveLength(2);
      expect(f.executions).toHaveLength(3);

      const list = (await crisper.get("/api/tasks?state=FAILURE&limit=10")).body;
      expect(list.tasks.map((t: any) => t.id).sort()).toEqual([boom, flaky].sort());
      const byName = (await crisper.get("/api/tasks?name=labapp.echo")).body;
      expect(byName.tasks.map((t: any) => t.id)).toEqual([echo]);

      const never = await crisper.get(`/api/tasks/${crypto.randomUUID()}`);
      expect(never.status).toBe(404);
      expect(never.body.hint).toContain("PENDING");

      const workers = (await crisper.get("/api/workers")).body.workers;
      expect(workers.find((w: any) => w.hostname === "e2e@lab")).toMatchObject({ status: "online", sw_ident: "py-celery" });
    }, 120_000);

    test("a stopped worker goes offline, told apart as a clean shutdown", async () => {
      await worker?.stop();
      worker = null;
      await until("worker offline", async () => {
        const w = (await crisper.get("/api/workers")).body.workers.find((x: any) => x.hostname === "e2e@lab");
        return w?.status === "offline";
      });
      const w = (await crisper.get("/api/workers")).body.workers.find((x: any) => x.hostname === "e2e@lab");
      expect(w.offline_reason).toBe("shutdown");
    });

    test("a restart of Crisper keeps the history", async () => {
      const before = (await crisper.get("/api/tasks?limit=500")).body.tasks.length;
      expect(before).toBeGreaterThanOrEqual(9);
      crisper = await s.restartCrisper();
      const after = (await crisper.get("/api/tasks?limit=500")).body.tasks;
      expect(after.length).toBe(before);
      expect((await task(ids.queued as string)).task.state).toBe("SUCCESS");
      expect((await crisper.get("/readyz")).status).toBe(200);
    });
  });
}
