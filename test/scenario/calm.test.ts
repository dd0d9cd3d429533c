/**
 * No false alarms: a couple of minutes of ordinary real traffic — successes,
 * failures, retries, revokes, tasks of several seconds, a graceful worker
 * restart, tasks sent at irregular times — must open no alert at all.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type CeleryProcess, revokeTask, sendTasks, startWorker, type TaskRequest } from "../support/celery.ts";
import { waitUntil } from "../support/processes.ts";
import { QUICK_INTERVALS, scenarios } from "../support/scenario.ts";

const CALM_SECONDS = Number(process.env.CRISPER_CALM_SECONDS ?? 180);
const servers = scenarios("calm", { store: "postgres" });
const workers: CeleryProcess[] = [];

beforeAll(() => servers.start());

afterAll(async () => {
  for (const w of workers) await w.kill();
  await servers.stop();
});

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

test(`${CALM_SECONDS} s of ordinary traffic opens no alert`, async () => {
  const { crisper, lab } = await servers.scenario({ ...QUICK_INTERVALS, ENABLE_EVENTS_INTERVAL_S: "2", INSPECT_INTERVAL_S: "2" });
  workers.push(await startWorker({ ...lab, hostname: "calm1@lab", concurrency: 2 }));
  workers.push(await startWorker({ ...lab, hostname: "calm2@lab", concurrency: 2 }));
  const random = rng(42);
  const start = performance.now();
  let restarted = false;
  let sent = 0;
  // At least CALM_SECONDS of traffic, and at least a task every two seconds
  // of it on average: a busy machine sends more slowly, so it sends longer.
  while ((performance.now() - start) / 1000 < CALM_SECONDS || sent <= CALM_SECONDS / 2) {
    const r = random();
    const batch: TaskRequest[] = [];
    if (r < 0.35) batch.push({ task: "labapp.add", args: [Math.floor(r * 100), 1] });
    else if (r < 0.5) batch.push({ task: "labapp.boom", args: ["expected failure"] });
    else if (r < 0.6) batch.push({ task: "labapp.flaky" });
    else if (r < 0.8) batch.push({ task: "labapp.sleepy", args: [2 + Math.floor(random() * 5)] });
    else batch.push({ task: "labapp.echo", args: [{ note: "<b>calm</b>", n: Math.floor(r * 1000) }] });
    const ids = await sendTasks(lab, batch);
    sent += ids.length;
    if (random() < 0.05) {
      const [later] = await sendTasks(lab, [{ task: "labapp.add", args: [0, 0], countdown: 30 }]);
      await revokeTask(lab, later as string);
    }
    if (!restarted && (performance.now() - start) / 1000 > CALM_SECONDS / 2) {
      // A graceful restart, as a deploy does it.
      restarted = true;
      const old = workers.pop() as CeleryProcess;
      await old.stop();
      workers.push(await startWorker({ ...lab, hostname: "calm2@lab", concurrency: 2 }));
    }
    await Bun.sleep(200 + random() * 1300);
  }
  // Let everything finish, then give the detectors a few more passes.
  await waitUntil(
    async () => (await crisper.get("/api/tasks?state=STARTED")).body.tasks.length === 0 && (await crisper.get("/api/tasks?state=RECEIVED")).body.tasks.length === 0,
    60_000,
    "all tasks finished",
    500,
  );
  await Bun.sleep(5000);
  // A pass that started after the wait has finished: what it would open is open.
  await crisper.detector.nextPass();
  const alerts = (await crisper.get("/api/alerts?status=all&limit=500")).body.alerts;
  console.log(`[calm] ${sent} tasks over ${CALM_SECONDS} s, ${alerts.length} alerts`);
  for (const a of alerts) {
    // What led to a false alarm, for whoever has to fix it.
    const t = (await crisper.get(`/api/tasks/${a.subject}`)).body;
    for (const e of t?.events ?? []) console.log(`  ${a.kind} ${e.timestamp} ${e.source} ${e.type} ${e.hostname} retries=${e.fields?.retries}`);
  }
  expect(alerts.map((a: any) => `${a.kind} ${a.subject}: ${a.summary}`)).toEqual([]);
  const workersNow = (await crisper.get("/api/workers")).body.workers;
  expect(workersNow.map((w: any) => [w.hostname, w.status])).toEqual([
    ["calm1@lab", "online"],
    ["calm2@lab", "online"],
  ]);
}, 600_000);
