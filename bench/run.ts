/**
 * `bun run bench`: Celery-shaped events into a real redis-server at a chosen
 * rate, a real Crisper collector (its own process) writing into a real
 * PostgreSQL, and what it sustains:
 *
 *   lag         event-to-queryable lag p50/p99 at --lag-rate (default 10,000 events/s)
 *   throughput  loss at --rate (default 40,000 events/s) for --seconds (default 60)
 *   memory      collector RSS across --tasks (default 1,000,000) tasks, and bytes per task on disk
 *   pages       with --page-tasks (default 1,000,000) tasks stored, how long the web server
 *               takes to answer the task list, a search, a task page, the overview
 *
 * `bun run bench [lag|throughput|memory|pages]…` runs some; no argument runs all.
 * `--prefill N` first stores N tasks of history (in SQL), to measure the
 * collector against a store that is no longer small.
 * Loss is counted exactly: every published task event has a unique key, and
 * the events table is counted at the end; the collector's own drop counter
 * and the Redis subscription's disconnect counter must stay at zero too.
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { freePort } from "../test/support/ports.ts";
import { startPostgres } from "../test/support/postgres-server.ts";
import { startRedis } from "../test/support/redis-server.ts";
import { fillTasks } from "./fill-tasks.ts";
import { EVENTS_PER_TASK, publishTraffic as publish } from "./traffic.ts";

const { values: opts, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  allowPositionals: true,
  options: {
    rate: { type: "string", default: "40000" },
    seconds: { type: "string", default: "60" },
    "lag-rate": { type: "string", default: "10000" },
    "lag-seconds": { type: "string", default: "30" },
    tasks: { type: "string", default: "1000000" },
    "memory-rate": { type: "string", default: "10000" },
    "page-tasks": { type: "string", default: "1000000" },
    prefill: { type: "string", default: "0" },
  },
});
const phases = positionals.length ? positionals : ["lag", "throughput", "memory", "pages"];

const log = (s: string) => console.error(`[bench] ${s}`);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

interface Env {
  redisUrl: string;
  pg: postgres.Sql;
  databaseUrl: string;
  collectorPid: number;
  webUrl: string;
  stop(): Promise<void>;
}

async function startEnvironment(): Promise<Env> {
  const redis = await startRedis();
  const pgServer = await startPostgres({ durable: true });
  const port = await freePort();
  // CRISPER_BENCH_CPU_PROF=<dir> writes the collector's CPU profile there on exit.
  const profDir = process.env.CRISPER_BENCH_CPU_PROF;
  // CRISPER_BENCH_BUN_FLAGS: extra flags for the collector's bun (e.g. --smol), to compare.
  const flags = (process.env.CRISPER_BENCH_BUN_FLAGS ?? "").split(" ").filter(Boolean);
  const proc = Bun.spawn(["bun", ...flags, ...(profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []), "src/cli.ts", "serve"], {
    cwd: `${import.meta.dir}/..`,
    env: {
      ...process.env,
      BROKER_URL: redis.url,
      DATABASE_URL: pgServer.url,
      PORT: String(port),
      ENABLE_EVENTS: "false",
      LOG_LEVEL: "warn",
    },
    stdout: "inherit",
    stderr: "inherit",
  });
  const webUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${webUrl}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 300) throw new Error("collector did not become ready");
    await Bun.sleep(100);
  }
  const pg = postgres(pgServer.url, { max: 2, onnotice: () => {} });
  return {
    redisUrl: redis.url,
    pg,
    databaseUrl: pgServer.url,
    collectorPid: proc.pid,
    webUrl,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      await pg.end();
      await pgServer.stop();
      await redis.stop();
    },
  };
}

async function metric(env: Env, name: string): Promise<number> {
  const text = await (await fetch(`${env.webUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name) && !line.startsWith("#")) sum += Number(line.split(" ").pop());
  return sum;
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** Waits until the store holds `expected` task events (or stops growing). */
async function drained(env: Env, expected: number, timeoutS = 120): Promise<{ stored: number; waitedS: number }> {
  const t0 = performance.now();
  let last = -1;
  let stableSince = performance.now();
  for (;;) {
    const { n } = one(await env.pg<{ n: string }[]>`select count(*) as n from events`);
    const stored = Number(n);
    const waitedS = (performance.now() - t0) / 1000;
    if (stored >= expected) return { stored, waitedS };
    if (stored !== last) {
      last = stored;
      stableSince = performance.now();
    } else if (performance.now() - stableSince > 10_000 || waitedS > timeoutS) return { stored, waitedS };
    await Bun.sleep(250);
  }
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

async function lagPhase(env: Env, rate: number, seconds: number) {
  log(`lag: ${fmt(rate)} events/s for ${seconds} s`);
  const pending = new Map<string, number>();
  const lags: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling || pending.size > 0) {
      if (pending.size > 0) {
        const ids = [...pending.keys()];
        const rows = await env.pg<{ id: string }[]>`select id from tasks where id = any(${ids}) and state = 'SUCCESS'`;
        const seenAt = performance.now();
        for (const r of rows) {
          lags.push((seenAt - (pending.get(r.id) as number)) / 1000);
          pending.delete(r.id);
        }
      }
      if (!polling && pending.size > 0 && lags.length > 0 && performance.now() - Math.max(...pending.values()) > 30_000) break;
      await Bun.sleep(5);
    }
  })();
  const before = await metric(env, "crisper_buffer_dropped_total");
  await publish(env.redisUrl, rate, seconds, undefined, (id) => pending.set(id, performance.now()));
  polling = false;
  await poller;
  const dropped = (await metric(env, "crisper_buffer_dropped_total")) - before;
  return { rate, probes: lags.length, p50: percentile(lags, 50), p99: percentile(lags, 99), max: Math.max(...lags), dropped };
}

async function throughputPhase(env: Env, rate: number, seconds: number) {
  log(`throughput: ${fmt(rate)} events/s for ${seconds} s`);
  const { n: before } = one(await env.pg<{ n: string }[]>`select count(*) as n from events`);
  const dropped0 = await metric(env, "crisper_buffer_dropped_total");
  const disc0 = await metric(env, "crisper_stream_disconnects_total");
  let maxBuffer = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxBuffer = Math.max(maxBuffer, await metric(env, "crisper_buffer_messages"));
      await Bun.sleep(1000);
    }
  })();
  const pub = await publish(env.redisUrl, rate, seconds);
  const { stored, waitedS } = await drained(env, Number(before) + pub.events);
  sampling = false;
  await sampler;
  const got = stored - Number(before);
  return {
    rate,
    seconds: pub.seconds,
    achieved: pub.events / pub.seconds,
    published: pub.events,
    stored: got,
    lost: pub.events - got,
    dropped: (await metric(env, "crisper_buffer_dropped_total")) - dropped0,
    disconnects: (await metric(env, "crisper_stream_disconnects_total")) - disc0,
    maxBuffer,
    drainS: waitedS,
  };
}

async function memoryPhase(env: Env, tasks: number, rate: number) {
  const seconds = (tasks * EVENTS_PER_TASK) / rate;
  log(`memory: ${fmt(tasks)} tasks at ${fmt(rate)} events/s (${seconds.toFixed(0)} s)`);
  const { n: before } = one(await env.pg<{ n: string }[]>`select count(*) as n from events`);
  // The peak (VmHWM) from here on, not the earlier phases' (Linux: "5" resets it).
  require("node:fs").writeFileSync(`/proc/${env.collectorPid}/clear_refs`, "5");
  const samples: { at: number; rss: number }[] = [];
  let lastSample = -1;
  const pub = await publish(env.redisUrl, rate, seconds, (elapsed) => {
    if (elapsed - lastSample >= 1) {
      lastSample = elapsed;
      samples.push({ at: elapsed / seconds, rss: rssMb(env.collectorPid).rss });
    }
  });
  const { stored } = await drained(env, Number(before) + pub.events, 300);
  log(`RSS every second (MB): ${samples.map((x) => Math.round(x.rss)).join(" ")}`);
  const at = (f: number) => samples.find((s) => s.at >= f)?.rss ?? Number.NaN;
  const { tasks: nTasks, bytes } = one(await env.pg<{ tasks: string; bytes: string }[]>`
    select (select count(*) from tasks) as tasks,
           pg_total_relation_size('tasks') + pg_total_relation_size('events') as bytes`);
  return {
    tasks: pub.tasks,
    lost: Number(before) + pub.events - stored,
    rss25: at(0.25),
    rss50: at(0.5),
    rss100: samples.at(-1)?.rss ?? Number.NaN,
    peak: rssMb(env.collectorPid).hwm,
    bytesPerTask: Number(bytes) / Number(nTasks),
  };
}

/** First byte to last byte of a page, ms: the server's render plus loopback. */
async function timed(url: string, times: number): Promise<{ p50: number; p95: number; status: number }> {
  const ms: number[] = [];
  let status = 0;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    ms.push(performance.now() - t0);
    status = res.status;
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(ms.length / 2)] as number, p95: ms[Math.floor(ms.length * 0.95)] as number, status };
}

async function pagesPhase(env: Env, target: number) {
  const added = await fillTasks(env.pg, target, log);
  const { n } = one(await env.pg<{ n: string }[]>`select count(*) as n from tasks`);
  log(`pages: ${fmt(Number(n))} tasks (${fmt(added)} added in SQL)`);
  const failed = one(await env.pg<{ id: string }[]>`select id from tasks where state = 'FAILURE' order by first_seen_at desc limit 1 offset 500`);
  // The second page: the first page's cursor, as a person clicking "older" follows it.
  const first = (await (await fetch(`${env.webUrl}/api/tasks`)).json()) as { next_cursor: string };
  const pages: [string, string][] = [
    ["task list, newest first", "/tasks"],
    ["task list, second page", `/tasks?cursor=${encodeURIComponent(first.next_cursor)}`],
    ["task list, failures", "/tasks?state=FAILURE"],
    ["task list, one name", "/tasks?name=app.tasks.job7"],
    ["search, common text (customer-42)", "/tasks?q=customer-42"],
    ["search, a whole task id (redirected to the task)", `/tasks?q=${failed.id}`],
    ["search, text no task has (one 50,000-task window)", "/tasks?q=no-such-text"],
    ["one task (failed, with traceback)", `/tasks/${failed.id}`],
    ["overview", "/"],
  ];
  const results: string[] = [];
  for (const [label, path] of pages) {
    await timed(env.webUrl + path, 3); // warm
    const r = await timed(env.webUrl + path, 30);
    results.push(`${label}: p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms${r.status === 200 ? "" : ` (HTTP ${r.status})`}`);
    log(`pages: ${results.at(-1)}`);
  }
  return { tasks: Number(n), results };
}

const env = await startEnvironment();
const rows: string[] = [];
try {
  if (Number(opts.prefill) > 0) {
    await fillTasks(env.pg, Number(opts.prefill), log);
    const { n } = one(await env.pg<{ n: string }[]>`select count(*) as n from tasks`);
    rows.push(`| history stored before the phases below (\`--prefill\`) | ${fmt(Number(n))} tasks |`);
  }
  if (phases.includes("lag")) {
    const r = await lagPhase(env, Number(opts["lag-rate"]), Number(opts["lag-seconds"]));
    rows.push(`| event-to-queryable lag at ${fmt(r.rate)} events/s | p50 ${(r.p50 * 1000).toFixed(0)} ms, p99 ${(r.p99 * 1000).toFixed(0)} ms, max ${(r.max * 1000).toFixed(0)} ms (${r.probes} probe tasks; ${r.dropped} dropped) |`);
  }
  if (phases.includes("throughput")) {
    const r = await throughputPhase(env, Number(opts.rate), Number(opts.seconds));
    rows.push(
      `| throughput at ${fmt(r.rate)} events/s for ${r.seconds.toFixed(0)} s | ${fmt(r.published)} published (${fmt(r.achieved)}/s achieved), ${fmt(r.stored)} stored, **${fmt(r.lost)} lost**; buffer drops ${r.dropped}, Redis disconnects ${r.disconnects}; buffer peak ${fmt(r.maxBuffer)} messages; drained ${r.drainS.toFixed(1)} s after the last publish |`,
    );
  }
  if (phases.includes("memory")) {
    const r = await memoryPhase(env, Number(opts.tasks), Number(opts["memory-rate"]));
    rows.push(
      `| collector RSS across ${fmt(r.tasks)} tasks | ${r.rss25.toFixed(0)} MB at 25%, ${r.rss50.toFixed(0)} MB at 50%, ${r.rss100.toFixed(0)} MB at 100%; peak ${r.peak.toFixed(0)} MB; ${fmt(r.lost)} lost |`,
      `| PostgreSQL bytes per task (tasks + events, with indexes) | ${fmt(r.bytesPerTask)} |`,
    );
  }
  if (phases.includes("pages")) {
    const r = await pagesPhase(env, Number(opts["page-tasks"]));
    rows.push(`| pages with ${fmt(r.tasks)} tasks stored (30 requests each, p50 / p95) | ${r.results.join("; ")} |`);
  }
} finally {
  await env.stop();
}
console.log(["| measure | result |", "|---|---|", ...rows].join("\n"));

/** The single row of a one-row query. */
function one<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error("query returned no rows");
  return row;
}
