/** @jsxImportSource hono/jsx */
/** Views render as plain functions: the queue chart, and hostile text escaped. */
import { describe, expect, test } from "bun:test";
import { DepthChart } from "../../views/queues.tsx";
import { timeline } from "../../views/task.tsx";
import { TaskRows } from "../../views/tasks.tsx";
import { WorkerPage } from "../../views/workers.tsx";
import { WorkerConfiguration } from "../../views/worker-config.tsx";
import { workerSettings } from "../../src/celery/worker-config.ts";
import { configFindings, redeliveryLimitOf } from "../../src/detect/config-findings.ts";
import { DEFAULT_DETECT_CONFIG } from "../../src/detect/config.ts";
import { NOTHING_STRANDED_HERE } from "../../src/api/actions/requeue.ts";

describe("views", () => {
  test("the depth chart draws one point per sample, scaled to the largest", () => {
    const svg = String(<DepthChart points={[0, 5, 10, 4].map((depth, i) => ({ at: 1_800_000_000 + i * 60, depth }))} />);
    expect(svg).toContain("<svg");
    expect((svg.match(/[ML]\d/g) ?? []).length).toBe(4);
    expect(svg).toContain(">10</text>");
    expect(String(<DepthChart points={[{ at: 1, depth: 1 }]} />)).toContain("Not enough samples");
  });

  test("a worker's hostname and its tasks' names are escaped", () => {
    const w = {
      hostname: `<script>alert(1)</script>@lab`,
      status: "online",
      offline_reason: null,
      last_heartbeat_at: null,
      freq_s: 2,
      active: 0,
      processed: 0,
      reserved: 1,
      loadavg: null,
      pid: 1,
      sw_ident: null,
      sw_ver: null,
      sw_sys: null,
      online_since: null,
      offline_at: null,
      first_seen_at: null,
      inspected_at: null,
      reserved_tasks: [{ id: `"><img src=x onerror=alert(2)>`, name: "<b>x</b>" }],
      active_tasks: [],
    } as any;
    const html = String(<WorkerPage w={w} alerts={[]} now={1_800_000_000} />);
    expect(html).not.toContain("<script>alert(1)");
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;@lab");
    expect(html).toContain("&lt;b&gt;x&lt;/b&gt;");
    // Dead, seen by an admin: the requeue button on Redis; on RabbitMQ, why there is none.
    const dead = { ...w, status: "offline", offline_reason: "heartbeat_lost" };
    const redis = String(<WorkerPage w={dead} alerts={[]} now={1_800_000_000} requeue={{ token: "t0k" }} />);
    expect(redis).toContain("Requeue stranded messages");
    expect(redis).toContain('value="t0k"');
    const rabbit = String(<WorkerPage w={dead} alerts={[]} now={1_800_000_000} requeue={{ unavailable: NOTHING_STRANDED_HERE }} />);
    expect(rabbit).not.toContain("Requeue stranded messages");
    expect(rabbit).toContain("Nothing is stranded on RabbitMQ");
    // Alive: nothing to requeue.
    expect(String(<WorkerPage w={w} alerts={[]} now={1_800_000_000} requeue={{ token: "t0k" }} />)).not.toContain("Requeue stranded messages");
  });

  test("the timeline: the backend's copy of an event is one row with it; a backend STARTED received after the finish goes before it", () => {
    const ev = (type: string, source: string, at: number) => ({ type, source, hostname: "w@lab", timestamp: new Date(at).toISOString() }) as any;
    const sent = ev("task-sent", "events", 1000);
    const done = ev("task-succeeded", "result-backend", 1087);
    const started = ev("task-started", "result-backend", 1098); // received after date_done
    expect(timeline([sent, done, started]).map((e) => e.type)).toEqual(["task-sent", "task-started", "task-succeeded"]);
    // With both sources, what the backend repeats is one row from both.
    const started2 = ev("task-started", "events", 1090);
    const done2 = ev("task-succeeded", "events", 1091);
    expect(timeline([sent, done, started2, done2, started]).map((e) => `${e.type}/${e.source}`)).toEqual([
      "task-sent/events",
      "task-started/events, result-backend",
      "task-succeeded/events, result-backend",
    ]);
    // A retry in between stops it: that STARTED belongs to the next attempt.
    const retried = ev("task-retried", "events", 1050);
    expect(timeline([sent, retried, started]).map((e) => e.type)).toEqual(["task-sent", "task-retried", "task-started"]);
    // From the event stream, times are the worker's own: the order stays as stored.
    const s2 = ev("task-started", "events", 1098);
    expect(timeline([sent, done, s2]).map((e) => e.type)).toEqual(["task-sent", "task-succeeded", "task-started"]);
  });

  test("a search that stopped at its window says so and offers to go on", () => {
    const html = String(<TaskRows tasks={[]} query={{ q: "needle" }} nextCursor="abc" searchedWindow={50_000} now={1_800_000_000} />);
    expect(html).toContain("No match among these 50,000 tasks.");
    expect(html).toContain("Searched 50,000 tasks: search older ones");
    expect(html).toContain("cursor=abc");
    const plain = String(<TaskRows tasks={[]} query={{}} nextCursor={null} now={1_800_000_000} />);
    expect(plain).toContain("No task matches.");
  });
});

describe("a worker's configuration", () => {
  test("a task name from a worker's reply is escaped; the risky settings are marked; the memory chart draws each reading", async () => {
    const replies = (await Bun.file(`${import.meta.dir}/../fixtures/worker-config/risky.json`).json()).replies;
    // A task name is one word, so this one is kept: it must come out escaped.
    replies.registered.push(`<img/src=x/onerror=alert(1)> [time_limit=9000]`);
    const settings = workerSettings(replies);
    if (!settings) throw new Error("no settings");
    expect(settings.tasks.map((t) => t.name)).toEqual(["<img/src=x/onerror=alert(1)>"]);
    const findings = configFindings(settings, redeliveryLimitOf(settings, DEFAULT_DETECT_CONFIG));
    const memory = [0, 1, 2].map((i) => ({ at: new Date(1_800_000_000_000 + i * 600_000).toISOString(), maxrss_kb: 50_000 + i * 1000 }));
    const html = String(<WorkerConfiguration config={{ ...settings, read_at: new Date(1_800_000_000_000).toISOString(), memory }} findings={findings} now={1_800_000_100} />);
    expect(html).not.toContain("<img/src=x");
    expect(html).toContain("&lt;img/src=x/onerror=alert(1)&gt;");
    expect((html.match(/<tr class="risk">/g) ?? []).length).toBe(4); // acks_late, time limit, visibility timeout, the task
    expect((html.match(/<circle /g) ?? []).length).toBe(3);
  });
});
