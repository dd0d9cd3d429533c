/**
 * Alert noise, as plain functions: a Crisper that cannot judge a worker
 * leaves its alerts alone; stream interruptions add up in one event_gap;
 * cron schedules are read in BEAT_TIMEZONE.
 */
import { describe, expect, test } from "bun:test";
import { canonicalJson } from "../../src/alerts/store.ts";
import { parseConfig } from "../../src/config.ts";
import { detectBeatMissed } from "../../src/detect/checks/beat-missed.ts";
import { cutBegan, cutEnded, episodeFromAlert, eventGapAlert, type GapEpisode, steady } from "../../src/detect/checks/event-gap.ts";
import { detectWorkerDeath } from "../../src/detect/checks/worker-death.ts";
import { DEFAULT_DETECT_CONFIG as cfg, detectConfig } from "../../src/detect/config.ts";
import { nextFire, parseCron, timezoneName } from "../../src/detect/cron.ts";
import type { WorkerView } from "../../src/detect/pass.ts";
import { T0, task, worker } from "../support/detect-views.ts";
import { scheduleStatus } from "../../src/detect/schedules.ts";


describe("a worker Crisper cannot judge yet keeps its alerts as they are", () => {
  // w1 stopped heartbeating at T0 (dead from T0+6); w2 heartbeats.
  const workers = [worker(), worker({ hostname: "w2@lab", lastHeartbeatAt: T0 + 59 })];
  const tasks = [task(), task({ id: "t2", state: "RECEIVED", startedAt: null }), task({ id: "t3", worker: "w2@lab" }), task({ id: "t4", state: "SUCCESS" })];

  test("just started (stream up 3 s): w1 is neither dead nor alive; its tasks are left alone", () => {
    const r = detectWorkerDeath(workers, tasks, null, T0 + 60, T0 + 57, cfg);
    expect(r.workerOffline).toEqual([]);
    expect(r.taskLost).toEqual([]);
    expect(r.unjudged.workers).toEqual(["w1@lab"]);
    expect(r.unjudged.tasks.sort()).toEqual(["t1", "t2"]);
  });

  test("stream down: the same", () => {
    const r = detectWorkerDeath(workers, tasks, null, T0 + 60, null, cfg);
    expect(r.workerOffline).toEqual([]);
    expect(r.unjudged.workers).toEqual(["w1@lab"]);
  });

  test("listening a full heartbeat window: judged dead, nothing left unjudged", () => {
    const r = detectWorkerDeath(workers, tasks, null, T0 + 60, T0 + 54, cfg);
    expect(r.workerOffline.map((a) => a.subject)).toEqual(["w1@lab"]);
    expect(r.unjudged).toEqual({ workers: [], tasks: [] });
  });

  test("a heartbeat while Crisper has just started is a judgement: the worker is back", () => {
    const back = [worker({ lastHeartbeatAt: T0 + 59, onlineAt: T0 + 58 }), workers[1] as WorkerView];
    const r = detectWorkerDeath(back, tasks, null, T0 + 60, T0 + 57, cfg);
    expect(r.workerOffline).toEqual([]);
    expect(r.unjudged.workers).toEqual([]);
    // It came back as a new process: what the old one held is lost.
    expect(r.taskLost.map((a) => a.subject).sort()).toEqual(["t1", "t2"]);
  });

  test("the worker_offline a judged pass writes is the one it writes again (no update)", () => {
    // Minutes later (after a Crisper restart, say), w1 is described the same way.
    const a = detectWorkerDeath([worker()], tasks, null, T0 + 60, T0 + 54, cfg).workerOffline;
    const b = detectWorkerDeath([worker()], tasks, null, T0 + 600, T0 + 590, cfg).workerOffline;
    expect(a).toHaveLength(1);
    expect(b).toEqual(a);
  });
});

describe("alert details compare as data, whatever order jsonb keeps keys in", () => {
  test("key order does not matter; values do", () => {
    expect(canonicalJson({ last_heartbeat_at: "x", declared_dead_at: "y", freq_s: 2 })).toBe(canonicalJson({ freq_s: 2, declared_dead_at: "y", last_heartbeat_at: "x" }));
    expect(canonicalJson({ a: { c: 1, b: [{ e: 1, d: 2 }] } })).toBe(canonicalJson({ a: { b: [{ d: 2, e: 1 }], c: 1 } }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: 2 }));
  });
});

describe("stream interruptions add up in one event_gap", () => {
  const settings = { mergeS: 600, canReconcile: true };
  const rec = (recovered: string[], checked: number) => ({ checked, recovered: recovered.length, recovered_tasks: recovered });

  /** Three cuts of a few seconds, a minute apart, each reconciled. */
  function threeCuts(): GapEpisode {
    let e: GapEpisode | null = null;
    for (const [i, start] of [T0, T0 + 60, T0 + 120].entries()) {
      e = cutBegan(e, { from: start, to: null, reason: "connection closed" });
      expect(e.downSince).toBe(start);
      e = cutEnded(e, { from: start, to: start + 2 + i }, rec([`t${i}`], 5));
      expect(e.downSince).toBeNull();
    }
    if (!e) throw new Error("no episode");
    return e;
  }

  test("counts, window, total time and reconciliations", () => {
    const e = threeCuts();
    expect(e).toMatchObject({ cuts: 3, from: T0, lastBackAt: T0 + 124, downS: 2 + 3 + 4, checked: 15, recovered: 3, recoveredTasks: ["t0", "t1", "t2"] });
    const a = eventGapAlert(e, settings);
    expect(a.details).toMatchObject({
      cuts: 3,
      from: new Date(T0 * 1000).toISOString(),
      to: new Date((T0 + 124) * 1000).toISOString(),
      duration_s: 9,
      recovered: 3,
      interrupted_since: null,
      resolves_at: new Date((T0 + 724) * 1000).toISOString(),
    });
    expect(a.summary).toContain("interrupted 3 times");
    expect(a.summary).toContain("Resolves once the stream has stayed up for 600 s");
    expect(eventGapAlert(e, settings, true).summary).not.toContain("Resolves once");
  });

  test("open until the stream has stayed up for the whole window, then it resolves", () => {
    const e = threeCuts();
    expect(steady(e, T0 + 124 + 599, 600)).toBe(false);
    expect(steady(e, T0 + 124 + 600, 600)).toBe(true);
    const down = cutBegan(e, { from: T0 + 700, to: null, reason: "connection closed" });
    expect(steady(down, T0 + 5000, 600)).toBe(false);
    expect(eventGapAlert(down, settings).summary).toContain("Interruption 4 since");
    expect(eventGapAlert(down, settings).details).toMatchObject({ to: null, interrupted_since: new Date((T0 + 700) * 1000).toISOString() });
  });

  test("read back from the alert's details, the episode gives the same alert (no update on each pass)", () => {
    for (const e of [threeCuts(), cutBegan(threeCuts(), { from: T0 + 700.1234567, to: null, reason: "cut" })]) {
      const a = eventGapAlert(e, settings);
      const again = eventGapAlert(episodeFromAlert({ details: a.details, openedAt: new Date(T0 * 1000) }), settings);
      expect(canonicalJson(again)).toBe(canonicalJson(a));
      // And an interruption that ends after a restart is recognised as the one under way.
      const back = episodeFromAlert({ details: a.details, openedAt: new Date(T0 * 1000) });
      if (back.downSince !== null) expect(cutEnded(back, { from: T0 + 700.1234567, to: T0 + 710 }, null).downSince).toBeNull();
    }
  });

  test("overlapping windows (a full buffer during a cut) are not counted twice", () => {
    let e = cutBegan(null, { from: T0, to: T0 + 10, reason: "connection closed" });
    e = cutEnded(e, { from: T0, to: T0 + 10 }, null);
    e = cutBegan(e, { from: T0 + 5, to: T0 + 12, reason: "collector buffer full" });
    e = cutEnded(e, { from: T0 + 5, to: T0 + 12 }, null);
    expect(e.downS).toBe(12);
    expect(e.cuts).toBe(2);
  });

  test("an alert written before interruptions were merged is read as one interruption", () => {
    const e = episodeFromAlert({ details: { from: new Date(T0 * 1000).toISOString(), to: null, reason: "connection closed" }, openedAt: new Date(T0 * 1000) });
    expect(e).toMatchObject({ cuts: 1, from: T0, downSince: T0, lastBackAt: null, downS: 0 });
  });

  test("without a result backend, the note says what to set", () => {
    const e = cutEnded(cutBegan(null, { from: T0, to: T0 + 3, reason: "x" }), { from: T0, to: T0 + 3 }, rec([], 4));
    expect(eventGapAlert(e, { mergeS: 600, canReconcile: false }).details.note).toContain("RESULT_BACKEND_URL");
    expect(eventGapAlert(e, settings, true).summary).toBe(
      "The event stream was interrupted for 3 s (x). Reconciled: 0 of 4 unfinished tasks had a final state in the result backend.",
    );
  });
});

describe("BEAT_TIMEZONE", () => {
  test("UTC by default; a zone is checked and written as Intl names it; an unknown one stops with one line", () => {
    const def = parseConfig({});
    expect("config" in def && def.config.BEAT_TIMEZONE).toBe("UTC");
    const paris = parseConfig({ BEAT_TIMEZONE: "europe/paris" });
    expect("config" in paris && detectConfig(paris.config).beatTimezone).toBe("Europe/Paris");
    const bad = parseConfig({ BEAT_TIMEZONE: "Mars/Olympus_Mons" });
    expect("error" in bad && bad.error).toStartWith("BEAT_TIMEZONE: unknown timezone");
    expect("error" in bad && bad.error).toContain('"Mars/Olympus_Mons"');
    expect("error" in bad && bad.error).not.toContain("\n");
    expect(timezoneName("Local")).toBeNull();
    expect(timezoneName(" ")).toBeNull();
  });

  test("declared cron schedules are read in it, and the alert says so", () => {
    // Weekdays at 03:00 in New York: EST (UTC-5) in November.
    const friday = Date.UTC(2026, 10, 27, 8, 0, 20) / 1000;
    const monday = Date.UTC(2026, 10, 30, 8, 0) / 1000;
    expect(nextFire(parseCron("0 3 * * 1-5", "America/New_York"), friday)).toBe(monday);
    const s = { name: "nightly", task: "app.report", expectedIntervalS: null, cron: "0 3 * * 1-5", source: "configured" as const, lastSeenAt: friday };
    expect(scheduleStatus(s, monday + 3600, 0.1, "America/New_York")).toEqual({ status: "ok", nextDueAt: monday });
    // Read in UTC instead, Monday's run would be due five hours earlier, and late by now.
    expect(scheduleStatus(s, monday + 3600, 0.1).status).toBe("late");
    const [alert] = detectBeatMissed([s], monday + 3 * 3600, 0.1, "America/New_York");
    expect(alert?.summary).toContain("cron 0 3 * * 1-5 America/New_York");
    expect(alert?.details).toMatchObject({ cron: "0 3 * * 1-5", timezone: "America/New_York", next_due_at: new Date(monday * 1000).toISOString() });
  });
});
