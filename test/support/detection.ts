/**
 * What detection scenarios share, whatever the broker: waiting for an alert
 * while timing it, and a worker SIGKILL victim that holds one running task
 * and two prefetched ones.
 */
import { expect } from "bun:test";
import { type CeleryProcess, type LabSettings, sendTasks, type startWorker } from "./celery.ts";
import { waitUntil } from "./processes.ts";

/** The parts of a scenario (Redis or RabbitMQ) these helpers use. */
export interface DetectionScenario {
  lab: LabSettings;
  crisper: { get(path: string): Promise<{ body: any }> };
  worker(hostname: string, opts?: Partial<Parameters<typeof startWorker>[0]>): Promise<CeleryProcess>;
  alerts(status?: string): Promise<any[]>;
  task(id: string): Promise<any>;
}

/** Polls until an alert of `kind` for `subject` exists; prints (`[ttd] <label>kind`) and returns seconds since `since`. */
export async function timeToAlert(s: DetectionScenario, kind: string, subject: string, since: number, o: { timeoutMs?: number; label?: string } = {}) {
  let found: any;
  await waitUntil(
    async () => {
      found = (await s.alerts()).find((a) => a.kind === kind && a.subject === subject);
      return Boolean(found);
    },
    o.timeoutMs ?? 60_000,
    `${kind} alert for ${subject}`,
    100,
  );
  const ttd = (performance.now() - since) / 1000;
  console.log(`[ttd] ${o.label ?? ""}${kind}: ${ttd.toFixed(1)} s`);
  return { alert: found, ttd };
}

/**
 * `victim@lab` (prefetch multiplier 4, concurrency 1) running one 60 s task
 * with two more prefetched, once its `reserved` reply says so: what a
 * SIGKILL scenario kills.
 */
export async function victimHoldingPrefetched(s: DetectionScenario) {
  const worker = await s.worker("victim@lab", { prefetchMultiplier: 4 });
  const [running, ...prefetched] = await sendTasks(s.lab, [1, 2, 3].map(() => ({ task: "labapp.sleepy", args: [60] })));
  await waitUntil(async () => (await s.task(running as string))?.task?.state === "STARTED", 60_000, "task started", 200);
  // The worker told us what it holds while all was well.
  const victim = async () => (await s.crisper.get("/api/workers")).body.workers.find((x: any) => x.hostname === "victim@lab");
  await waitUntil(async () => (await victim())?.reserved === 2, 60_000, "reserved seen", 200);
  const held = await victim();
  expect(held.reserved_tasks.map((t: any) => t.id).sort()).toEqual([...prefetched].sort());
  return { worker, running: running as string, prefetched, held };
}
