/**
 * The detectors as plain functions: synthetic timelines with an injected
 * clock (no sleeping), and the real faults capture replayed through the merge.
 */
import { describe, expect, test } from "bun:test";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { detectBeatMissed } from "../../src/detect/checks/beat-missed.ts";
import { detectEventsDisabled } from "../../src/detect/checks/events-disabled.ts";
import { detectBacklog } from "../../src/detect/checks/queue-backlog.ts";
import { detectStalled } from "../../src/detect/checks/task-stalled.ts";
import { detectVisibilityRisk } from "../../src/detect/checks/visibility-timeout-risk.ts";
import { detectWorkerDeath } from "../../src/detect/checks/worker-death.ts";
import { DEFAULT_DETECT_CONFIG as cfg } from "../../src/detect/config.ts";
import { T0, task, worker } from "../support/detect-views.ts";
import { nextFire, parseCron } from "../../src/detect/cron.ts";
import { learnInterval, parseDeclaredSchedules, scheduleStatus } from "../../src/detect/schedules.ts";
import { duplicateRuns, executionsFromEvents } from "../../src/state/executions.ts";
import { taskPatchesFromEvents } from "../../src/state/task-patch.ts";
import { workerPatchesFromEvents } from "../../src/state/worker.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";


describe("worker death", () => {
  test("alive within Celery's window plus grace; dead after, with its tasks lost", () => {
    const w = worker();
    const tasks = [task(), task({ id: "t2", state: "RECEIVED", startedAt: null }), task({ id: "t3", worker: "w2@lab" })];
    // Heartbeat expires at T0 + 2*2 = T0+4; grace 2 s → dead from T0+6.
    expect(detectWorkerDeath([w], tasks, null, T0 + 5.9, T0 - 60, cfg).workerOffline).toEqual([]);
    const r = detectWorkerDeath([w], tasks, null, T0 + 6, T0 - 60, cfg);
    expect(r.workerOffline.map((a) => a.subject)).toEqual(["w1@lab"]);
    expect(r.taskLost.map((a) => a.subject).sort()).toEqual(["t1", "t2"]);
    expect(r.taskLost[0]?.details).toMatchObject({ worker: "w1@lab" });
  });

  test("a clean shutdown is not an alert", () => {
    const r = detectWorkerDeath([worker({ offlineAt: T0 + 1 })], [task()], null, T0 + 60, T0 - 60, cfg);
    expect(r.workerOffline).toEqual([]);
    expect(r.taskLost).toEqual([]);
  });

  test("no worker is declared dead while Crisper's own stream is down or just back", () => {
    expect(detectWorkerDeath([worker()], [task()], null, T0 + 30, null, cfg).workerOffline).toEqual([]);
    // Back 3 s ago: not yet a full heartbeat window (2*2 + grace 2 = 6 s) of listening.
    expect(detectWorkerDeath([worker()], [task()], null, T0 + 30, T0 + 27, cfg).workerOffline).toEqual([]);
    expect(detectWorkerDeath([worker()], [task()], null, T0 + 30, T0 + 24, cfg).workerOffline).toHaveLength(1);
  });

  test("a worker restarted under the same name: the old process's task is lost", () => {
    const r = detectWorkerDeath([worker({ onlineAt: T0, lastHeartbeatAt: T0 + 10 })], [task({ lastEventAt: T0 - 4 })], null, T0 + 11, T0 - 60, cfg);
    expect(r.workerOffline).toEqual([]);
    expect(r.taskLost.map((a) => a.subject)).toEqual(["t1"]);
    // After a warm shutdown, the restarted worker's old prefetched task went back to the queue.
    const clean = detectWorkerDeath(
      [worker({ onlineAt: T0, offlineAt: T0 - 1, lastHeartbeatAt: T0 + 10 })],
      [task({ state: "RECEIVED", lastEventAt: T0 - 4 })],
      null,
      T0 + 11,
      T0 - 60,
      cfg,
    );
    expect(clean.taskLost).toEqual([]);
  });

  test("prefetched messages of a dead worker are named, with when they come back", () => {
    const w = worker({ reservedTaskIds: ["r1", "r2"] });
    const unacked = [
      { taskId: "r1", deliveredAt: T0 - 10, queue: "celery" },
      { taskId: "t1", deliveredAt: T0 - 5, queue: "celery" },
    ];
    const r = detectWorkerDeath([w], [task()], unacked, T0 + 10, T0 - 60, cfg);
    // r2 is no longer unacked (another worker took it, or it was acked): not stranded.
    expect(r.prefetchedStranded).toHaveLength(1);
    expect(r.prefetchedStranded[0]?.details).toMatchObject({ task_ids: ["r1"], count: 1 });
    expect(r.prefetchedStranded[0]?.details.returns_at).toBe(new Date((T0 - 10 + 3600) * 1000).toISOString());
  });

  test("the faults capture: both SIGKILLed workers are dead and the task they left STARTED is lost", () => {
    const events = captureMessages(readCapture("celery-5.2-redis-faults.jsonl")).flatMap((m) => decodeRawMessage(m).events);
    const tasks = [...taskPatchesFromEvents(events).values()];
    const workers = [...workerPatchesFromEvents(events).values()].map((w) => worker({ ...w, reservedTaskIds: [] }));
    const last = Math.max(...events.map((e) => e.localReceived));
    const unfinished = tasks
      .filter((t) => t.state === "STARTED" || t.state === "RECEIVED")
      .map((t) => task({ id: t.id, name: t.name, state: t.state, worker: t.worker, startedAt: t.startedAt, receivedAt: t.receivedAt, lastEventAt: t.lastEventAt }));
    expect(unfinished.length).toBeGreaterThan(0);
    const r = detectWorkerDeath(workers, unfinished, null, last + 10, last - 300, cfg);
    expect(r.workerOffline.map((a) => a.subject).sort()).toEqual(["dup1@lab", "dup2@lab"]);
    expect(r.taskLost.map((a) => a.subject)).toEqual(unfinished.map((t) => t.id));
  });
});

describe("stalled tasks", () => {
  test("configured, learned and default thresholds; tasks on dead workers are not stalled", () => {
    const c = { ...cfg, taskStallThresholds: { "app.report": 7200 } };
    const tasks = [
      task({ id: "a", name: "app.charge", startedAt: T0 - 100 }),
      task({ id: "b", name: "app.report", startedAt: T0 - 5000 }),
      task({ id: "c", name: "app.other", startedAt: T0 - 3700 }),
      task({ id: "d", name: "app.other", startedAt: T0 - 3700, worker: "dead@lab" }),
    ];
    // app.charge usually takes 10 s (p99): threshold max(60, 30) = 60 s.
    const r = detectStalled(tasks, new Map([["app.charge", 10]]), new Set(["dead@lab"]), T0, c);
    expect(r.map((a) => [a.subject, a.details.threshold_source])).toEqual([
      ["a", "learned"],
      ["c", "default"],
    ]);
  });

  test("a task whose worker restarted under it is lost (task_lost), not also stalled", () => {
    const running = task({ id: "r", name: "app.other", startedAt: T0 - 3700, lastEventAt: T0 - 3700, worker: "back@lab" });
    const restarted = worker({ hostname: "back@lab", onlineAt: T0 - 60, lastHeartbeatAt: T0 - 1 });
    expect(detectStalled([running], new Map(), new Set(), T0, cfg, [restarted])).toEqual([]);
    // The same worker, online since before the task started: the task is stalled.
    const same = worker({ hostname: "back@lab", onlineAt: T0 - 7200, lastHeartbeatAt: T0 - 1 });
    expect(detectStalled([running], new Map(), new Set(), T0, cfg, [same]).map((a) => a.subject)).toEqual(["r"]);
  });

  test("a task named like an Object property has no configured threshold", () => {
    // Task names are attacker-controlled; thresholds are a plain object.
    const names = ["constructor", "toString", "__proto__", "hasOwnProperty"];
    const r = detectStalled(names.map((name, i) => task({ id: `p${i}`, name, startedAt: T0 - 100 })), new Map(), new Set(), T0, cfg);
    expect(r).toEqual([]);
  });
});

describe("visibility timeout risk", () => {
  test("warns past the ratio of the timeout, before the redelivery", () => {
    const c = { ...cfg, visibilityTimeoutS: 100 };
    const r = detectVisibilityRisk(
      [
        { taskId: "old", deliveredAt: T0 - 85, queue: "celery" },
        { taskId: "young", deliveredAt: T0 - 20, queue: "celery" },
      ],
      new Map([["old", "app.long"]]),
      T0,
      c,
    );
    expect(r.map((a) => a.subject)).toEqual(["old"]);
    expect(r[0]?.details.redelivery_at).toBe(new Date((T0 + 15) * 1000).toISOString());
  });
});

describe("Beat schedules", () => {
  test("steady arrivals are learned; irregular ones never", () => {
    expect(learnInterval([0, 2, 4.05, 6, 7.98, 10].map((x) => T0 + x))).toBeCloseTo(2, 1);
    expect(learnInterval([0, 1, 5, 6, 13, 14].map((x) => T0 + x))).toBeNull();
    expect(learnInterval([0, 2, 4].map((x) => T0 + x))).toBeNull(); // too few
    expect(learnInterval([0, 0.1, 0.2, 0.3, 0.4, 0.5].map((x) => T0 + x))).toBeNull(); // a burst
  });

  test("late after the tolerance, missed a whole interval later; alert only when overdue", () => {
    const s = { name: "canary", task: "app.canary", expectedIntervalS: 10, source: "learned" as const, lastSeenAt: T0 };
    expect(scheduleStatus(s, T0 + 19, 1).status).toBe("ok");
    expect(scheduleStatus(s, T0 + 21, 1).status).toBe("late");
    expect(scheduleStatus(s, T0 + 31, 1).status).toBe("missed");
    expect(detectBeatMissed([s], T0 + 19, 1)).toEqual([]);
    expect(detectBeatMissed([s], T0 + 21, 1)[0]?.details).toMatchObject({ status: "late", missed_runs: 2 });
    expect(detectBeatMissed([s], T0 + 31, 1)[0]).toMatchObject({ kind: "beat_missed", subject: "canary", details: { missed_runs: 3, status: "missed" } });
  });

  test("declared schedules parse, and bad ones say why", () => {
    expect(parseDeclaredSchedules("nightly=app.report@cron(0 3 * * 1-5); ping=app.ping@30")).toEqual([
      { name: "nightly", task: "app.report", expectedIntervalS: null, cron: "0 3 * * 1-5", source: "configured", lastSeenAt: null },
      { name: "ping", task: "app.ping", expectedIntervalS: 30, cron: null, source: "configured", lastSeenAt: null },
    ]);
    expect(parseDeclaredSchedules("nightly=app.report")).toContain("expected name=task@seconds");
    expect(parseDeclaredSchedules("bad=app.x@cron(61 * * * *)")).toContain("minute: 61");
  });

  test("a cron schedule is due at its next firing, late a tolerance later", () => {
    // Weekdays at 03:00 UTC. Friday 2026-11-27 03:00:20 the run arrived; next is Monday 03:00.
    const friday = Date.UTC(2026, 10, 27, 3, 0, 20) / 1000;
    const monday = Date.UTC(2026, 10, 30, 3, 0) / 1000;
    expect(nextFire(parseCron("0 3 * * 1-5"), friday)).toBe(monday);
    expect(nextFire(parseCron("*/15 * * * *"), Date.UTC(2026, 0, 1, 10, 7) / 1000)).toBe(Date.UTC(2026, 0, 1, 10, 15) / 1000);
    expect(nextFire(parseCron("0 0 29 2 *"), Date.UTC(2026, 0, 1) / 1000)).toBe(Date.UTC(2028, 1, 29) / 1000);
    // Celery's crontab, not cron: both day fields must match. The first
    // Saturday of December 2026 is the 5th (cron's OR would say the 1st).
    expect(nextFire(parseCron("0 22 1-7 * 6"), Date.UTC(2026, 10, 25) / 1000)).toBe(Date.UTC(2026, 11, 5, 22) / 1000);
    // Names, as Celery's crontab takes them.
    expect(nextFire(parseCron("0 3 * * mon-fri"), friday)).toBe(monday);
    // Beat's timezone: 09:00 in Paris is 08:00 UTC in winter.
    expect(nextFire(parseCron("0 9 * * *", "Europe/Paris"), Date.UTC(2026, 10, 25) / 1000)).toBe(Date.UTC(2026, 10, 25, 8) / 1000);
    const s = { name: "nightly", task: "app.report", expectedIntervalS: null, cron: "0 3 * * 1-5", source: "configured" as const, lastSeenAt: friday };
    // Monday's period is one day (to Tuesday 03:00); tolerance 0.1 → late from 05:24.
    expect(scheduleStatus(s, monday + 3600, 0.1).status).toBe("ok");
    expect(scheduleStatus(s, monday + 3 * 3600, 0.1).status).toBe("late");
    expect(detectBeatMissed([s], monday + 3 * 3600, 0.1)[0]?.summary).toContain("cron 0 3 * * 1-5 UTC");
  });
});

describe("queue backlog", () => {
  const points = (depths: number[], step = 60) => depths.map((depth, i) => ({ at: T0 - (depths.length - 1 - i) * step, depth }));
  const c = { ...cfg, queueBacklogWindowS: 300 };
  test("sustained growth alerts; a queue that drains does not", () => {
    const r = detectBacklog(
      new Map([
        ["growing", points([10, 60, 120, 180, 260, 330])],
        ["spiky", points([10, 300, 5, 200, 10, 150])],
        ["flat", points([500, 500, 500, 500, 500, 500])],
      ]),
      T0,
      c,
    );
    expect(r.map((a) => a.subject)).toEqual(["growing"]);
  });
  test("a configured depth alerts at once", () => {
    const r = detectBacklog(new Map([["flat", points([500, 500])]]), T0, { ...c, queueBacklogDepth: 400 });
    expect(r[0]?.details).toMatchObject({ rule: "depth", depth: 500 });
  });
});

describe("events disabled", () => {
  test("a worker processing tasks without task events, watched long enough", () => {
    const a = { hostname: "w1@lab", processedFrom: 10, processedTo: 25, watchedSince: T0 - 61, lastTaskEventAt: null };
    expect(detectEventsDisabled([a], T0, cfg).map((x) => x.subject)).toEqual(["w1@lab"]);
    expect(detectEventsDisabled([{ ...a, lastTaskEventAt: T0 - 5 }], T0, cfg)).toEqual([]);
    expect(detectEventsDisabled([{ ...a, processedTo: 10 }], T0, cfg)).toEqual([]);
    expect(detectEventsDisabled([{ ...a, watchedSince: T0 - 10 }], T0, cfg)).toEqual([]);
  });
});

describe("duplicate runs", () => {
  const run = (worker: string, retries: number | null, startedAt: number | null, finishedAt: number | null = null) => ({
    worker,
    retries,
    receivedAt: null,
    startedAt,
    finishedAt,
    state: "SUCCESS" as const,
  });
  test("two workers at one retry count; an unknown count joins the only known one", () => {
    expect(duplicateRuns([run("a", 0, 1), run("b", 0, 5)])?.runs.map((x) => x.worker)).toEqual(["a", "b"]);
    expect(duplicateRuns([run("a", 0, 1), run("b", null, null, 9)])?.retries).toBe(0);
  });
  test("retries are not duplicates, and an unknown count is not guessed when the task retried", () => {
    expect(duplicateRuns([run("a", 0, 1), run("b", 1, 5), run("a", 2, 9)])).toBeNull();
    expect(duplicateRuns([run("a", 1, 1), run("b", 2, 5), run("a", null, null, 9)])).toBeNull();
    expect(duplicateRuns([run("a", 0, null)])).toBeNull();
    // The calm run's flaky task: attempt 0 seen only in the result backend, attempt 1's
    // task-received missed, attempt 2 complete. Not a duplicate.
    expect(duplicateRuns([{ ...run("calm2", null, 5, 6), state: "RETRY" }, run("calm1", 2, 9, 10)])).toBeNull();
  });
});

describe("executions from the result backend alone", () => {
  test("a STARTED record received after the SUCCESS one is the same run, not a second", () => {
    const ev = (type: string, timestamp: number) => ({ type, hostname: "w@lab", timestamp, source: "result-backend", fields: { retries: 0 } });
    const runs = executionsFromEvents([ev("task-succeeded", 10.0), ev("task-started", 10.05)]);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ worker: "w@lab", state: "SUCCESS", finishedAt: 10.0 });
  });
});
