/**
 * Workers' configuration: real Celery 5.2 replies to `conf`, `stats` and
 * `registered` (test/fixtures/worker-config/, recorded by capture.ts there)
 * read into settings, and each config_risk rule and piece of advice at its
 * boundary. Replies come from whoever can write to the broker: junk must
 * cost a field, never the reading.
 */
import { describe, expect, test } from "bun:test";
import { replyBody } from "../../src/celery/control.ts";
import { durationSeconds, parseRegistered, type WorkerSettings, workerSettings } from "../../src/celery/worker-config.ts";
import { configRiskAlert } from "../../src/detect/checks/config-risk.ts";
import { detectVisibilityRisk } from "../../src/detect/checks/visibility-timeout-risk.ts";
import { DEFAULT_DETECT_CONFIG as cfg } from "../../src/detect/config.ts";
import { configFindings, type RedeliveryLimit, redeliveryLimitOf } from "../../src/detect/config-findings.ts";

const FIXTURES = `${import.meta.dir}/../fixtures/worker-config`;

async function captured(name: "default" | "risky" | "annotated" | "gevent"): Promise<WorkerSettings> {
  const f = (await Bun.file(`${FIXTURES}/${name}.json`).json()) as { replies: Record<string, unknown> };
  const s = workerSettings(f.replies);
  if (!s) throw new Error(`${name}: no settings`);
  return s;
}

const rules = (findings: { rule: string; level: string }[]) => findings.map((f) => `${f.level}:${f.rule}`);
const redis = (w: WorkerSettings) => redeliveryLimitOf(w, cfg);

describe("reading the replies", () => {
  test("a default prefork worker: pool, prefetch, memory, transport, visibility timeout", async () => {
    const w = await captured("default");
    expect(w.pool).toEqual({ kind: "prefork", concurrency: 2, max_tasks_per_child: null });
    expect(w.prefetch_count).toBe(8);
    expect(w.worker_prefetch_multiplier).toBe(4);
    expect(w.maxrss_kb).toBeGreaterThan(10_000);
    expect(w.transport).toBe("redis");
    expect(w.visibility_timeout_s).toBe(3600);
    expect(w.task_acks_late).toBe(false);
    expect(w.task_time_limit).toBeNull();
    // "1 day, 0:00:00", as Celery's conf reply writes a timedelta.
    expect(w.result_expires).toBe(86_400);
    expect(w.tasks).toEqual([]);
    expect(w.registered_tasks).toBe(7);
    // Nothing of the dump beyond the subset: no URL, no path.
    expect(JSON.stringify(w)).not.toContain("redis://");
  });

  test("the command line's -P gevent, which conf's worker_pool misses, is read from the stats' pool", async () => {
    const f = (await Bun.file(`${FIXTURES}/gevent.json`).json()) as { replies: { conf: { worker_pool: string } } };
    expect(f.replies.conf.worker_pool).toBe("prefork");
    const w = await captured("gevent");
    expect(w.pool).toMatchObject({ kind: "gevent", concurrency: 100 });
    expect(w.prefetch_count).toBe(400);
  });

  test("the other pools, by the shape Celery 5.2's pools give their info, or a named implementation", () => {
    const kind = (pool: unknown, worker_pool = "prefork") => workerSettings({ stats: { pool }, conf: { worker_pool } })?.pool.kind;
    // celery/concurrency: solo.py, thread.py, eventlet.py _get_info.
    expect(kind({ "max-concurrency": 1, processes: [42], "max-tasks-per-child": null, "put-guarded-by-semaphore": true, timeouts: [] })).toBe("solo");
    expect(kind({ "max-concurrency": 8, threads: 3 })).toBe("threads");
    expect(kind({ "max-concurrency": 500, "free-threads": 499, "running-threads": 1 })).toBe("eventlet");
    expect(kind({ "max-concurrency": 4, implementation: "celery.concurrency.thread:TaskPool" })).toBe("threads");
    expect(kind({ "max-concurrency": 4 }, "gevent")).toBe("gevent");
    expect(kind(null)).toBe("unknown");
  });

  test("a task's own time limit from task_annotations, through registered", async () => {
    const w = await captured("annotated");
    expect(w.tasks).toEqual([{ name: "labapp.sleepy", time_limit: 1800, soft_time_limit: null, acks_late: true, reject_on_worker_lost: null }]);
    expect(w.visibility_timeout_s).toBe(600);
  });

  test("registered lines", () => {
    expect(parseRegistered("app.charge [time_limit=7200 acks_late=True]")).toEqual({ name: "app.charge", time_limit: 7200, soft_time_limit: null, acks_late: true, reject_on_worker_lost: null });
    expect(parseRegistered("app.plain")).toMatchObject({ name: "app.plain", time_limit: null });
    expect(parseRegistered("app.x [time_limit=abc acks_late=maybe]")).toMatchObject({ time_limit: null, acks_late: null });
    for (const junk of [null, 5, "", " [time_limit=1]", "a\u0000b", "a\ud800", "x".repeat(3000)]) expect(parseRegistered(junk)).toBeNull();
  });

  test("durations as conf writes them", () => {
    expect(durationSeconds("1 day, 0:00:00")).toBe(86_400);
    expect(durationSeconds("2 days, 3:04:05.5")).toBe(2 * 86_400 + 3 * 3600 + 4 * 60 + 5.5);
    expect(durationSeconds("0:05:00")).toBe(300);
    expect(durationSeconds(60)).toBe(60);
    for (const junk of ["soon", "1:2", {}, null, Number.NaN]) expect(durationSeconds(junk)).toBeNull();
  });

  test("junk costs a field, never the reading; an error or no reply is no reading", async () => {
    const f = (await Bun.file(`${FIXTURES}/risky.json`).json()) as { replies: { conf: Record<string, unknown>; stats: Record<string, unknown> } };
    const conf = { ...f.replies.conf, task_time_limit: "<script>", task_acks_late: "yes", broker_transport_options: [1, 2], worker_prefetch_multiplier: { a: 1 } };
    const stats = { ...f.replies.stats, pool: "x", rusage: { maxrss: -5 }, prefetch_count: 1e99 };
    const w = workerSettings({ conf, stats, registered: [1, {}, "ok.task", "bad\u0007name"] });
    expect(w).toMatchObject({ task_time_limit: null, task_acks_late: null, worker_prefetch_multiplier: null, maxrss_kb: null, prefetch_count: null });
    // conf's broker_transport_options is junk: the stats' copy of it stands.
    expect(w?.visibility_timeout_s).toBe(3600);
    expect(w?.pool.kind).toBe("unknown");
    expect(w?.task_reject_on_worker_lost).toBe(true);
    expect(w?.registered_tasks).toBe(1);
    // Out-of-range numbers would make dates nobody can write (a redelivery time 1e308 s away).
    const huge = workerSettings({ conf: { broker_transport_options: { visibility_timeout: 1e308 }, task_time_limit: 1e300, result_expires: "99999999999 days, 0:00:00" }, registered: ["a.b [time_limit=1e308]"] });
    expect(huge).toMatchObject({ visibility_timeout_s: null, task_time_limit: null, result_expires: null, tasks: [] });
    expect(workerSettings({ conf: { error: "No such command" } })).toBeNull();
    expect(workerSettings({})).toBeNull();
    expect(workerSettings({ conf: "x", stats: [1] })).toBeNull();
  });

  test("Python's Infinity and NaN in a reply body do not lose the reply", () => {
    const body = replyBody('{"w@lab": {"result_backend_max_retries": Infinity, "x": -Infinity, "y": NaN, "s": "NaN and Infinity"}}');
    expect(body).toEqual({ "w@lab": { result_backend_max_retries: null, x: null, y: null, s: "NaN and Infinity" } });
  });
});

describe("risks and advice", () => {
  test("a default worker gets no finding but the events advice", async () => {
    const w = await captured("default");
    // The lab app leaves worker_send_task_events off, as Celery does.
    expect(rules(configFindings(w, redis(w)))).toEqual(["advice:task_events_off"]);
    expect(configFindings({ ...w, worker_send_task_events: true }, redis(w))).toEqual([]);
    expect(configRiskAlert("default@lab", configFindings(w, redis(w)))).toBeNull();
  });

  test("task_time_limit 7200 with late acks and a visibility timeout of 3600: a risk naming both", async () => {
    const w = await captured("risky");
    const findings = configFindings(w, redis(w));
    expect(rules(findings)).toEqual(["risk:time_limit_beyond_visibility_timeout", "advice:acks_late_with_reject_on_worker_lost"]);
    expect(findings[0]?.settings).toEqual([
      { name: "task_time_limit", value: 7200 },
      { name: "task_acks_late", value: true },
      { name: "broker_transport_options.visibility_timeout", value: 3600 },
    ]);
    expect(findings[0]?.fix).toContain('broker_transport_options = {"visibility_timeout": 9000}');
    const alert = configRiskAlert("risky@lab", findings);
    expect(alert?.details.settings).toEqual(["task_time_limit=7200", "task_acks_late=true", "broker_transport_options.visibility_timeout=3600"]);
    // At the boundary: a limit equal to the timeout cannot outlive it.
    expect(configFindings({ ...w, task_time_limit: 3600 }, redis(w)).filter((f) => f.level === "risk")).toEqual([]);
    expect(configFindings({ ...w, task_time_limit: 3601 }, redis(w)).filter((f) => f.level === "risk")).toHaveLength(1);
    // Early acks: the message is acknowledged before the task runs.
    expect(configFindings({ ...w, task_acks_late: false }, redis(w)).filter((f) => f.level === "risk")).toEqual([]);
  });

  test("a task's own time limit (task_annotations) past the worker's visibility timeout, and unbounded prefetch", async () => {
    const w = await captured("annotated");
    const findings = configFindings(w, redis(w));
    expect(rules(findings)).toEqual(["risk:time_limit_beyond_visibility_timeout", "risk:prefetch_unbounded", "advice:task_events_off"]);
    expect(findings[0]).toMatchObject({ tasks: ["labapp.sleepy"], settings: [{ name: "labapp.sleepy: time_limit", value: 1800 }, { name: "acks_late", value: true }, { name: "broker_transport_options.visibility_timeout", value: 600 }] });
    expect(findings[1]?.fix).toContain("worker_prefetch_multiplier = 1");
  });

  test("prefetch above 1 on a gevent pool is a risk; 1 is not; on prefork 4 is fine", async () => {
    const w = await captured("gevent");
    expect(rules(configFindings(w, redis(w)))).toContain("risk:prefetch_on_async_pool");
    expect(rules(configFindings({ ...w, worker_prefetch_multiplier: 1 }, redis(w)))).not.toContain("risk:prefetch_on_async_pool");
    expect(rules(configFindings({ ...w, pool: { ...w.pool, kind: "eventlet" } }, redis(w)))).toContain("risk:prefetch_on_async_pool");
    const prefork = await captured("default");
    expect(rules(configFindings(prefork, redis(prefork)))).not.toContain("risk:prefetch_on_async_pool");
  });

  test("observed p99 runtime past the visibility timeout, with late acks", async () => {
    const w = await captured("risky");
    const limit: RedeliveryLimit = redis(w);
    const at = (p99S: number) => configFindings({ ...w, task_time_limit: null }, limit, [{ name: "labapp.sleepy", p99S, runs: 20 }]);
    expect(rules(at(3600))).not.toContain("risk:runtime_beyond_visibility_timeout");
    const over = at(3600.5).find((f) => f.rule === "runtime_beyond_visibility_timeout");
    expect(over).toMatchObject({ level: "risk", tasks: ["labapp.sleepy"] });
    // Early acks: long runs are not redelivered.
    const early = configFindings({ ...w, task_time_limit: null, task_acks_late: false }, limit, [{ name: "labapp.sleepy", p99S: 9000, runs: 20 }]);
    expect(rules(early)).not.toContain("risk:runtime_beyond_visibility_timeout");
  });

  test("advice: events off with the three-line fix; a short result_expires", async () => {
    const w = await captured("default");
    const off = configFindings({ ...w, task_track_started: false }, redis(w)).find((f) => f.rule === "task_events_off");
    expect(off?.settings.map((s) => s.name)).toEqual(["worker_send_task_events", "task_track_started"]);
    expect(off?.fix).toBe("worker_send_task_events = True\ntask_send_sent_event = True\ntask_track_started = True");
    const risky = await captured("risky");
    // result_expires=60, but no result backend: nothing expires.
    expect(rules(configFindings(risky, redis(risky)))).not.toContain("advice:short_result_expires");
    expect(rules(configFindings({ ...risky, result_backend: true }, redis(risky)))).toContain("advice:short_result_expires");
    expect(rules(configFindings({ ...risky, result_backend: true, result_expires: 3600 }, redis(risky)))).not.toContain("advice:short_result_expires");
  });

  test("the worker's own visibility timeout replaces the setting; RabbitMQ's consumer_timeout applies whatever the worker says", async () => {
    const w = await captured("annotated");
    expect(redeliveryLimitOf(w, cfg)).toEqual({ setting: "broker_transport_options.visibility_timeout", seconds: 600, source: "worker" });
    expect(redeliveryLimitOf({ visibility_timeout_s: null }, cfg)).toEqual({ setting: "broker_transport_options.visibility_timeout", seconds: 3600, source: "crisper" });
    expect(redeliveryLimitOf(w, { visibilityTimeoutS: 1800, redeliveryLimit: "consumer_timeout" })).toMatchObject({ setting: "consumer_timeout", seconds: 1800 });
    // visibility_timeout_risk: the task's worker's timeout (600 s) rather than BROKER_VISIBILITY_TIMEOUT (3600 s).
    const T = 1_800_000_000;
    const unacked = [{ taskId: "t1", deliveredAt: T - 500, queue: "celery" }];
    expect(detectVisibilityRisk(unacked, new Map(), T, cfg)).toEqual([]);
    const risk = detectVisibilityRisk(unacked, new Map(), T, cfg, () => 600);
    expect(risk[0]?.details).toMatchObject({ visibility_timeout_s: 600, unacked_s: 500 });
  });
});
