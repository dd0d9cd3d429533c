/**
 * `bun run bench`: Celery-shaped events into a real redis-server at a chosen
 * rate, a real Crisper collector (its own process) writing into a real
 * PostgreSQL, and what it sustains:
 *
 *   lag         event-to-queryable lag p50/p99 at --lag-rate (default 10,000 events/s)
 *   throughput  loss at --rate (default 40,000 events/s) for --seconds (default 60)
 *   rabbitmq    the same traffic through a real RabbitMQ (a node of its own, a second
 *               collector writing into a database of its own on the same PostgreSQL)
 *               at --rabbit-rate (default --rate) for --seconds: loss, and how long
 *               the store takes to catch up; only when named
 *   outage      loss when PostgreSQL is fast-stopped (`pg_ctl stop -m fast`) for
 *               --outage-seconds (default 60) at --outage-rate (default 5,000 events/s),
 *               then started again; buffer and spool peaks
 *   memory      collector RSS across --tasks (default 1,000,000) tasks, and bytes per task on disk
 *   pages       with --page-tasks (default 1,000,000) tasks stored, how long the web server
 *               takes to answer the task list, a search, a task page, the overview
 *   retention   a retention pass over --retention-tasks (default 10,000,000) tasks, half of
 *               them past retention, while --lag-rate events/s arrive: lag, loss, duration,
 *               and a timeline in 10 s windows (worst lag, batches); only when named
 *
 * BENCH_PG_EXTRA="name=value …" adds PostgreSQL settings to either setup
 * (e.g. "logging_collector=on log_checkpoints=on" to see what a lag peak
 * coincides with).
 *
 * Two PostgreSQL setups (--postgres, default both):
 *   tuned       fsync on, shared_buffers=256MB, max_wal_size=2GB
 *   untuned     PostgreSQL's defaults, but fsync=off
 * With no phase named, the tuned one runs every phase but rabbitmq (it would
 * take `bun run bench` well past 15 minutes) and the untuned one throughput
 * and outage; phases named run on every setup chosen.
 *
 * `--prefill N` first stores N tasks of history (in SQL), to measure the
 * collector against a store that is no longer small.
 * Loss is counted exactly: every published task event has a unique key, and
 * the events table is counted at the end; the collector's own drop counter
 * and the event stream's disconnect counter must stay at zero too.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { freePort } from "../test/support/ports.ts";
import { forEachLine } from "../test/support/processes.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../test/support/postgres-server.ts";
import { startRabbit } from "../test/support/rabbitmq-server.ts";
import { startRedis } from "../test/support/redis-server.ts";
import { fillAgedTasks, fillTasks } from "./fill-tasks.ts";
import { openDatabase } from "../src/store/database.ts";
import { retentionPass } from "../src/store/retention.ts";
import { amqpPublisher, EVENTS_PER_TASK, publishTraffic as publish } from "./traffic.ts";

const { values: opts, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  allowPositionals: true,
  options: {
    help: { type: "boolean", short: "h", default: false },
    postgres: { type: "string", default: "tuned,untuned" },
    rate: { type: "string", default: "40000" },
    seconds: { type: "string", default: "60" },
    "rabbit-rate": { type: "string" },
    "lag-rate": { type: "string", default: "10000" },
    "lag-seconds": { type: "string", default: "30" },
    "outage-rate": { type: "string", default: "5000" },
    "outage-seconds": { type: "string", default: "60" },
    tasks: { type: "string", default: "1000000" },
    "memory-rate": { type: "string", default: "10000" },
    "page-tasks": { type: "string", default: "1000000" },
    prefill: { type: "string", default: "0" },
    "retention-tasks": { type: "string", default: "10000000" },
  },
});

const PHASES = ["lag", "throughput", "rabbitmq", "outage", "memory", "pages", "retention"] as const;
type Phase = (typeof PHASES)[number];
const SETUPS = {
  tuned: {
    label: "tuned PostgreSQL",
    settings: ["shared_buffers=256MB", "max_wal_size=2GB"],
    // Not rabbitmq: a node to start and a backlog to drain would take `bun run bench` well past 15 minutes.
    defaultPhases: ["lag", "throughput", "outage", "memory", "pages"],
  },
  untuned: { label: "untuned PostgreSQL", settings: ["fsync=off"], defaultPhases: ["throughput", "outage"] },
} as const;
type Setup = keyof typeof SETUPS;

if (opts.help) {
  console.log(`Usage: bun bench/run.ts [${PHASES.join("|")}]… [options]

Phases (none named: the tuned PostgreSQL runs all but rabbitmq, the untuned one throughput
and outage):
  lag         event-to-queryable lag at --lag-rate for --lag-seconds
  throughput  loss at --rate events/s for --seconds
  rabbitmq    the same traffic through a real RabbitMQ node to a second collector, at
              --rabbit-rate events/s for --seconds: loss, queue peak, catch-up time
              (only when named)
  outage      loss when PostgreSQL is fast-stopped for --outage-seconds at --outage-rate
  memory      collector RSS across --tasks tasks at --memory-rate, bytes per task on disk
  pages       page timings with --page-tasks tasks stored
  retention   a retention pass over --retention-tasks tasks (half past retention, filled in SQL)
              while --lag-rate events/s arrive: lag p99, loss, the pass's duration (only when named)

Options (defaults):
  --postgres tuned,untuned   which PostgreSQL setups: tuned (fsync on, shared_buffers=256MB,
                             max_wal_size=2GB), untuned (defaults but fsync=off)
  --rate 40000 --seconds 60  --rabbit-rate (--rate)  --lag-rate 10000 --lag-seconds 30
  --outage-rate 5000 --outage-seconds 60  --tasks 1000000 --memory-rate 10000
  --page-tasks 1000000  --prefill 0  --retention-tasks 10000000

Environment: CRISPER_BENCH_CPU_PROF=<dir> (collector CPU profile), CRISPER_BENCH_BUN_FLAGS.`);
  process.exit(0);
}

const isPhase = (p: string): p is Phase => PHASES.some((x) => x === p);
const unknownPhase = positionals.find((p) => !isPhase(p));
const setups = opts.postgres.split(",").map((x) => x.trim());
const unknownSetup = setups.find((x) => !(x in SETUPS));
if (unknownPhase || unknownSetup) {
  console.error(`bench: unknown ${unknownPhase ? `phase ${unknownPhase}` : `setup ${unknownSetup}`} (see --help)`);
  process.exit(2);
}
const phasesFor = (setup: Setup): readonly Phase[] => (positionals.length ? positionals.filter(isPhase) : SETUPS[setup].defaultPhases);

const log = (s: string) => console.error(`[bench] ${s}`);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

interface Env {
  redisUrl: string;
  /** Renewed after an outage (a client that lived through one may be stuck). */
  pg: postgres.Sql;
  pgServer: PostgresServer;
  databaseUrl: string;
  dataDir: string;
  collectorPid: number;
  webUrl: string;
  /** The collector's log lines seen so far (it logs at info). */
  output: string[];
  stop(): Promise<void>;
}

/** A `crisper serve` of the bench's own, in its own process. */
interface Collector {
  pid: number;
  webUrl: string;
  /** Its DATA_DIR (the spool is there); removed by stop(). */
  dataDir: string;
  /** Its log lines seen so far (it logs at info). */
  output: string[];
  stop(): Promise<void>;
}

/** `crisper serve` watching `brokerUrl`, writing into `databaseUrl`, with a DATA_DIR of its own. */
async function startCollector(brokerUrl: string, databaseUrl: string): Promise<Collector> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "crisper-bench-"));
  // CRISPER_BENCH_CPU_PROF=<dir> writes the collector's CPU profile there on exit.
  const profDir = process.env.CRISPER_BENCH_CPU_PROF;
  // CRISPER_BENCH_BUN_FLAGS: extra flags for the collector's bun (e.g. --smol), to compare.
  const flags = (process.env.CRISPER_BENCH_BUN_FLAGS ?? "").split(" ").filter(Boolean);
  // The bun running the bench (`bun` is on PATH only under `bun run`).
  const proc = Bun.spawn([process.execPath, ...flags, ...(profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []), "src/cli.ts", "serve"], {
    cwd: `${import.meta.dir}/..`,
    env: {
      ...process.env,
      BROKER_URL: brokerUrl,
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      PORT: String(port),
      ENABLE_EVENTS: "false",
      LOG_LEVEL: "info",
    },
    stdout: "inherit",
    stderr: "pipe",
  });
  const output: string[] = [];
  void forEachLine(proc.stderr, (line) => {
    output.push(line);
    // Warnings and errors, and the collector's own story of an outage;
    // not /metrics failing while PostgreSQL is away (the bench asks every second).
    if (/ (warn|error) |spool|database writes/.test(line) && !/web: GET \/metrics/.test(line)) console.error(line);
  });
  const stop = async () => {
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  const webUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${webUrl}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 300 || proc.exitCode !== null) {
      await stop();
      throw new Error("collector did not become ready");
    }
    await Bun.sleep(100);
  }
  return { pid: proc.pid, webUrl, dataDir, output, stop };
}

async function startEnvironment(setup: Setup): Promise<Env> {
  const redis = await startRedis();
  const pgServer = await startPostgres({ settings: [...SETUPS[setup].settings, ...(process.env.BENCH_PG_EXTRA ?? "").split(" ").filter(Boolean)] });
  const collector = await startCollector(redis.url, pgServer.url);
  const env: Env = {
    redisUrl: redis.url,
    pg: postgres(pgServer.url, { max: 2, onnotice: () => {} }),
    pgServer,
    databaseUrl: pgServer.url,
    dataDir: collector.dataDir,
    collectorPid: collector.pid,
    webUrl: collector.webUrl,
    output: collector.output,
    async stop() {
      await collector.stop();
      await env.pg.end({ timeout: 1 });
      await pgServer.stop();
      await redis.stop();
    },
  };
  return env;
}

/** /metrics as text; null while it does not answer (it reads the store too). */
async function scrape(env: { webUrl: string }): Promise<string | null> {
  const res = await fetch(`${env.webUrl}/metrics`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
  if (!res || res.status !== 200) return null;
  return res.text();
}

/** A metric's value in a scrape (summed over labels). */
function valueIn(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name) && !line.startsWith("#")) sum += Number(line.split(" ").pop());
  return sum;
}

async function metric(env: { webUrl: string }, name: string): Promise<number | null> {
  const text = await scrape(env);
  return text === null ? null : valueIn(text, name);
}

/** A metric that must be readable (outside an outage). */
async function counter(env: { webUrl: string }, name: string): Promise<number> {
  return (await metric(env, name)) ?? Number.NaN;
}

/** Bytes in the collector's spool directory, read from disk (works when /metrics does not). */
function spoolBytesOnDisk(env: { dataDir: string }): number {
  const dir = join(env.dataDir, "spool");
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith(".seg"))
      .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/**
 * Waits until the store holds `expected` task events, or stops growing for
 * 30 s (what is missing then is lost), or `timeoutS` passes.
 */
async function drained(env: { pg: postgres.Sql }, expected: number, timeoutS = 900): Promise<{ stored: number; waitedS: number }> {
  const t0 = performance.now();
  let last = -1;
  let stableSince = performance.now();
  for (;;) {
    const stored = await storedEvents(env);
    const waitedS = (performance.now() - t0) / 1000;
    if (stored >= expected || waitedS > timeoutS) return { stored, waitedS };
    if (stored !== last) {
      last = stored;
      stableSince = performance.now();
    } else if (performance.now() - stableSince > 30_000) return { stored, waitedS };
    await Bun.sleep(250);
  }
}

/** Before a phase: the collector has written everything it held (a phase's backlog is not the next one's). */
async function settled(env: Env): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const text = await scrape(env);
    if (text !== null && valueIn(text, "crisper_buffer_messages") === 0 && valueIn(text, "crisper_spool_messages") === 0) {
      const a = await storedEvents(env);
      await Bun.sleep(2000);
      if ((await storedEvents(env)) === a) return;
    }
    await Bun.sleep(500);
  }
  log("the collector did not settle: figures below include the last phase's backlog");
}

async function storedEvents(env: { pg: postgres.Sql }): Promise<number> {
  return Number(one(await env.pg<{ n: string }[]>`select count(*) as n from events`).n);
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

async function lagPhase(env: Env, rate: number, seconds: number) {
  log(`lag: ${fmt(rate)} events/s for ${seconds} s`);
  const before = await counter(env, "crisper_buffer_dropped_total");
  const { lags } = await measureLag(env, rate, seconds);
  const dropped = (await counter(env, "crisper_buffer_dropped_total")) - before;
  return { rate, probes: lags.length, p50: percentile(lags, 50), p99: percentile(lags, 99), max: Math.max(...lags), dropped };
}

/** Publishes at `rate` for `seconds`; each probe task's time from publish to SUCCESS queryable in PostgreSQL, seconds. */
async function measureLag(env: Env, rate: number, seconds: number) {
  const pending = new Map<string, number>();
  const lags: number[] = [];
  /** When each lag was seen (performance.now(), ms), for timelines. */
  const seen: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling || pending.size > 0) {
      if (pending.size > 0) {
        const ids = [...pending.keys()];
        const rows = await env.pg<{ id: string }[]>`select id from tasks where id = any(${ids}) and state = 'SUCCESS'`;
        const seenAt = performance.now();
        for (const r of rows) {
          lags.push((seenAt - (pending.get(r.id) as number)) / 1000);
          seen.push(seenAt);
          pending.delete(r.id);
        }
      }
      if (!polling && pending.size > 0 && lags.length > 0 && performance.now() - Math.max(...pending.values()) > 30_000) break;
      await Bun.sleep(5);
    }
  })();
  const pub = await publish(env.redisUrl, rate, seconds, undefined, (id) => pending.set(id, performance.now()));
  polling = false;
  await poller;
  return { lags, seen, published: pub.events };
}

/**
 * A retention pass over `tasks` tasks (half of them past TASK_RETENTION,
 * filled in SQL) while the collector takes `rate` events/s: the lag of
 * probe tasks meanwhile, events lost, and how long the pass took. The pass
 * runs here, against the collector's PostgreSQL (the same code `crisper
 * serve` runs on its interval, store/retention.ts).
 */
async function retentionPhase(env: Env, tasks: number, rate: number) {
  const retentionS = 30 * 86_400;
  await fillAgedTasks(env.pg, tasks, retentionS, log);
  const database = await openDatabase({ databaseUrl: env.databaseUrl });
  try {
    const before = await storedEvents(env);
    const dropped0 = await counter(env, "crisper_buffer_dropped_total");
    log(`retention: a pass over ${fmt(tasks)} tasks while ${fmt(rate)} events/s arrive`);
    let result: Awaited<ReturnType<typeof retentionPass>> | null = null;
    // Traffic for 10 s before the pass, then on until it ends, then 10 s more.
    const lags: number[] = [];
    const seen: number[] = [];
    const batches: { at: number; ms: number; tasks: number }[] = [];
    let published = 0;
    const chunk = async () => {
      const r = await measureLag(env, rate, 10);
      lags.push(...r.lags);
      seen.push(...r.seen);
      published += r.published;
    };
    await chunk();
    const passT0 = performance.now();
    const pass = retentionPass(database, {
      taskRetentionS: retentionS,
      alertRetentionS: 90 * 86_400,
      statsRetentionS: 400 * 86_400,
      onBatch: (b) => batches.push({ at: performance.now(), ms: b.ms, tasks: b.tasks }),
    }).then((r) => {
      result = r;
    });
    while (result === null) await chunk();
    await pass;
    await chunk();
    const r = result as unknown as Awaited<ReturnType<typeof retentionPass>>;
    logTimeline(passT0, lags, seen, batches);
    const { stored } = await drained(env, before + published - r.events);
    return {
      tasks,
      rate,
      deletedTasks: r.tasks,
      deletedEvents: r.events,
      passS: r.seconds,
      probes: lags.length,
      p50: percentile(lags, 50),
      p99: percentile(lags, 99),
      max: Math.max(...lags),
      lost: before + published - r.events - stored,
      dropped: (await counter(env, "crisper_buffer_dropped_total")) - dropped0,
    };
  } finally {
    await database.close();
  }
}

/**
 * The pass in 10 s windows (from its start): the probes' worst lag and the
 * batches' count and durations, to see what a lag peak coincides with.
 */
function logTimeline(t0: number, lags: number[], seen: number[], batches: { at: number; ms: number; tasks: number }[]) {
  const windowMs = 10_000;
  const end = Math.max(...seen, ...batches.map((b) => b.at));
  for (let w = Math.floor((Math.min(...seen) - t0) / windowMs); w * windowMs + t0 <= end; w++) {
    const from = t0 + w * windowMs;
    const inW = (at: number) => at >= from && at < from + windowMs;
    const l = lags.filter((_, i) => inW(seen[i] as number));
    const b = batches.filter((x) => inW(x.at));
    const ms = b.map((x) => x.ms);
    log(
      `retention timeline ${String(w * 10).padStart(5)} s: lag max ${l.length ? (Math.max(...l) * 1000).toFixed(0) : "-"} ms (${l.length} probes); ` +
        `${b.length} batches, ${b.reduce((a, x) => a + x.tasks, 0)} tasks, batch mean ${ms.length ? (ms.reduce((a, x) => a + x, 0) / ms.length).toFixed(0) : "-"} / max ${ms.length ? Math.max(...ms).toFixed(0) : "-"} ms`,
    );
  }
}

/** Samples a collector's buffer, spool and RSS every second; their peaks when stopped. */
function peaks(env: Pick<Env, "webUrl" | "dataDir" | "collectorPid">) {
  const peak = { bufferMessages: 0, spoolMessages: 0, spoolBytes: 0, rssMb: 0 };
  let on = true;
  const done = (async () => {
    while (on) {
      const text = await scrape(env);
      if (text !== null) {
        peak.bufferMessages = Math.max(peak.bufferMessages, valueIn(text, "crisper_buffer_messages"));
        peak.spoolMessages = Math.max(peak.spoolMessages, valueIn(text, "crisper_spool_messages"));
      }
      peak.spoolBytes = Math.max(peak.spoolBytes, spoolBytesOnDisk(env));
      peak.rssMb = Math.max(peak.rssMb, rssMb(env.collectorPid).rss);
      await Bun.sleep(1000);
    }
  })();
  return {
    async stop() {
      on = false;
      await done;
      return peak;
    },
  };
}

const describePeaks = (p: { bufferMessages: number; spoolMessages: number; spoolBytes: number; rssMb: number }) =>
  `buffer peak ${fmt(p.bufferMessages)} messages, spool peak ${fmt(p.spoolMessages)} messages / ${(p.spoolBytes / 2 ** 20).toFixed(0)} MB on disk, collector RSS peak ${p.rssMb.toFixed(0)} MB`;


async function throughputPhase(env: Env, rate: number, seconds: number) {
  log(`throughput: ${fmt(rate)} events/s for ${seconds} s`);
  const before = await storedEvents(env);
  const dropped0 = await counter(env, "crisper_buffer_dropped_total");
  const disc0 = await counter(env, "crisper_stream_disconnects_total");
  const sampler = peaks(env);
  const pub = await publish(env.redisUrl, rate, seconds);
  const { stored, waitedS } = await drained(env, before + pub.events);
  const peak = await sampler.stop();
  const got = stored - before;
  return {
    rate,
    seconds: pub.seconds,
    achieved: pub.events / pub.seconds,
    published: pub.events,
    stored: got,
    lost: pub.events - got,
    dropped: (await counter(env, "crisper_buffer_dropped_total")) - dropped0,
    disconnects: (await counter(env, "crisper_stream_disconnects_total")) - disc0,
    peak,
    drainS: waitedS,
  };
}

/**
 * The throughput phase's traffic through RabbitMQ: a node of its own, a
 * second collector on it writing into a database of its own on the same
 * PostgreSQL (the Redis one stays idle). On RabbitMQ events wait in
 * Crisper's queue rather than being dropped, so what is measured is loss
 * and how long the store takes to catch up.
 */
async function rabbitPhase(env: Env, rate: number, seconds: number) {
  log(`rabbitmq: ${fmt(rate)} events/s for ${seconds} s`);
  const t0 = performance.now();
  const rabbit = await startRabbit();
  log(`rabbitmq: node up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let collector: Collector | null = null;
  let store: { pg: postgres.Sql } | null = null;
  try {
    const databaseUrl = await createDatabase(env.databaseUrl, "bench_rabbitmq");
    collector = await startCollector(rabbit.url, databaseUrl);
    store = { pg: postgres(databaseUrl, { max: 2, onnotice: () => {} }) };
    const mgmt = new URL(rabbit.managementUrl);
    const auth = { authorization: `Basic ${btoa(`${mgmt.username}:${mgmt.password}`)}` };
    /** Messages waiting in (or delivered from, not yet acknowledged by) Crisper's event queue. */
    const queued = async () => {
      const r = await fetch(`http://${mgmt.host}/api/queues/%2F/crisper.events?columns=messages`, { headers: auth }).catch(() => null);
      const body: unknown = r?.ok ? await r.json() : null;
      return typeof body === "object" && body !== null && "messages" in body && typeof body.messages === "number" ? body.messages : 0;
    };
    let maxQueued = 0;
    let sampling = true;
    const queueSampler = (async () => {
      while (sampling) {
        maxQueued = Math.max(maxQueued, await queued());
        await Bun.sleep(1000);
      }
    })();
    const sampler = peaks({ webUrl: collector.webUrl, dataDir: collector.dataDir, collectorPid: collector.pid });
    const pub = await publish(await amqpPublisher(rabbit.url), rate, seconds);
    const { stored, waitedS } = await drained(store, pub.events);
    const peak = await sampler.stop();
    sampling = false;
    await queueSampler;
    return {
      rate,
      seconds: pub.seconds,
      achieved: pub.events / pub.seconds,
      published: pub.events,
      stored,
      lost: pub.events - stored,
      storedPerS: stored / (pub.seconds + waitedS),
      // A collector of its own, started for this phase: its counters are this phase's.
      dropped: await counter(collector, "crisper_buffer_dropped_total"),
      disconnects: await counter(collector, "crisper_stream_disconnects_total"),
      maxQueued,
      peak,
      drainS: waitedS,
    };
  } finally {
    await collector?.stop();
    await store?.pg.end({ timeout: 1 });
    await rabbit.stop();
  }
}

/**
 * Events flow for 5 s, PostgreSQL is fast-stopped for `outageSeconds` while
 * they keep flowing, then started again, and they flow 5 s more. /metrics
 * does not answer during the outage (it reads the store), so the spool's
 * peak is also read from disk, and the held figures from the collector's
 * recovery log line.
 */
async function outagePhase(env: Env, rate: number, outageSeconds: number) {
  const lead = 5;
  const tail = 5;
  log(`outage: ${fmt(rate)} events/s, PostgreSQL stopped for ${outageSeconds} s after ${lead} s`);
  const before = await storedEvents(env);
  const dropped0 = await counter(env, "crisper_buffer_dropped_total");
  // The RSS peak (VmHWM) from here on.
  writeFileSync(`/proc/${env.collectorPid}/clear_refs`, "5");
  const sampler = peaks(env);
  let outage: Promise<void> | null = null;
  const pub = await publish(env.redisUrl, rate, lead + outageSeconds + tail, (elapsed) => {
    if (elapsed < lead || outage) return;
    outage = (async () => {
      await env.pgServer.fastStop();
      log("outage: PostgreSQL stopped");
      await Bun.sleep(outageSeconds * 1000);
      await env.pgServer.startAgain();
      log("outage: PostgreSQL started again");
    })();
  });
  await outage;
  // A client that lived through the outage may be stuck (postgres.js): a new one.
  await env.pg.end({ timeout: 1 });
  env.pg = postgres(env.databaseUrl, { max: 2, onnotice: () => {} });
  const { stored, waitedS } = await drained(env, before + pub.events);
  const peak = await sampler.stop();
  const recovery = env.output.findLast((l) => l.includes("database writes work again after"));
  const held = recovery ? /held meanwhile \((.*)\)$/.exec(recovery)?.[1] : undefined;
  return {
    rate,
    outageSeconds,
    published: pub.events,
    stored: stored - before,
    lost: before + pub.events - stored,
    dropped: (await counter(env, "crisper_buffer_dropped_total")) - dropped0,
    peak: { ...peak, rssMb: rssMb(env.collectorPid).hwm },
    heldAtRecovery: held ?? "not logged",
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
  const { stored } = await drained(env, Number(before) + pub.events);
  log(`RSS every second (MB): ${samples.map((x) => Math.round(x.rss)).join(" ")}`);
  const at = (f: number) => samples.find((s) => s.at >= f)?.rss ?? Number.NaN;
  const { tasks: nTasks, bytes } = one(await env.pg<{ tasks: string; bytes: string }[]>`
    select (select count(*) from tasks) as tasks,
           pg_total_relation_size('tasks') + pg_total_relation_size('events') as bytes`);
  // Where the bytes go: each table's heap (with TOAST) and each of its indexes, per task.
  const parts = await env.pg<{ name: string; bytes: string }[]>`
    select c.relname as name, pg_table_size(c.oid) as bytes from pg_class c
    where c.relname in ('tasks', 'events')
    union all
    select i.indexrelid::regclass::text, pg_relation_size(i.indexrelid) from pg_index i
    where i.indrelid in ('tasks'::regclass, 'events'::regclass)
    order by 2 desc`;
  log(`bytes per task: ${parts.map((p) => `${p.name} ${fmt(Number(p.bytes) / Number(nTasks))}`).join(", ")}`);
  // And each column's average stored size (pg_column_size), per row.
  for (const table of ["tasks", "events"]) {
    const columns = await env.pg<{ column_name: string }[]>`select column_name from information_schema.columns where table_name = ${table} order by ordinal_position`;
    const sizes = one(await env.pg.unsafe(`select ${columns.map((c) => `avg(pg_column_size(${c.column_name}))::float8 as ${c.column_name}`).join(", ")} from ${table}`)) as Record<string, number>;
    log(`${table}: average bytes per row by column: ${Object.entries(sizes).map(([k, v]) => `${k} ${Number(v ?? 0).toFixed(1)}`).join(", ")}`);
  }
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

const rows: string[] = [];
for (const setup of setups.filter((x): x is Setup => x in SETUPS)) {
  const phases = phasesFor(setup);
  const on = SETUPS[setup].label;
  log(`${on}: ${phases.join(", ")}`);
  const env = await startEnvironment(setup);
  try {
    if (Number(opts.prefill) > 0) {
      await fillTasks(env.pg, Number(opts.prefill), log);
      const { n } = one(await env.pg<{ n: string }[]>`select count(*) as n from tasks`);
      rows.push(`| history stored before the phases below (\`--prefill\`), ${on} | ${fmt(Number(n))} tasks |`);
    }
    if (phases.includes("lag")) {
      await settled(env);
      const r = await lagPhase(env, Number(opts["lag-rate"]), Number(opts["lag-seconds"]));
      rows.push(
        `| event-to-queryable lag at ${fmt(r.rate)} events/s, ${on} | p50 ${(r.p50 * 1000).toFixed(0)} ms, p99 ${(r.p99 * 1000).toFixed(0)} ms, max ${(r.max * 1000).toFixed(0)} ms (${r.probes} probe tasks; ${r.dropped} dropped) |`,
      );
    }
    if (phases.includes("throughput")) {
      await settled(env);
      const r = await throughputPhase(env, Number(opts.rate), Number(opts.seconds));
      rows.push(
        `| throughput at ${fmt(r.rate)} events/s for ${r.seconds.toFixed(0)} s, ${on} | ${fmt(r.published)} published (${fmt(r.achieved)}/s achieved), ${fmt(r.stored)} stored, **${fmt(r.lost)} lost**; drops ${r.dropped}, Redis disconnects ${r.disconnects}; ${describePeaks(r.peak)}; drained ${r.drainS.toFixed(1)} s after the last publish |`,
      );
    }
    if (phases.includes("rabbitmq")) {
      await settled(env);
      const r = await rabbitPhase(env, Number(opts["rabbit-rate"] ?? opts.rate), Number(opts.seconds));
      rows.push(
        `| RabbitMQ: throughput at ${fmt(r.rate)} events/s for ${r.seconds.toFixed(0)} s, ${on} | ${fmt(r.published)} published (${fmt(r.achieved)}/s achieved), ${fmt(r.stored)} stored, **${fmt(r.lost)} lost**; ${fmt(r.storedPerS)} events/s stored end to end; drops ${r.dropped}, disconnects ${r.disconnects}; queue peak ${fmt(r.maxQueued)} messages; ${describePeaks(r.peak)}; drained ${r.drainS.toFixed(1)} s after the last publish |`,
      );
    }
    if (phases.includes("outage")) {
      await settled(env);
      const r = await outagePhase(env, Number(opts["outage-rate"]), Number(opts["outage-seconds"]));
      rows.push(
        `| PostgreSQL fast-stopped for ${r.outageSeconds} s at ${fmt(r.rate)} events/s, ${on} | ${fmt(r.published)} published, ${fmt(r.stored)} stored, **${fmt(r.lost)} lost**; drops ${r.dropped}; held when it came back: ${r.heldAtRecovery}; ${describePeaks(r.peak)}; drained ${r.drainS.toFixed(1)} s after the last publish |`,
      );
    }
    if (phases.includes("memory")) {
      await settled(env);
      const r = await memoryPhase(env, Number(opts.tasks), Number(opts["memory-rate"]));
      rows.push(
        `| collector RSS across ${fmt(r.tasks)} tasks, ${on} | ${r.rss25.toFixed(0)} MB at 25%, ${r.rss50.toFixed(0)} MB at 50%, ${r.rss100.toFixed(0)} MB at 100%; peak ${r.peak.toFixed(0)} MB; ${fmt(r.lost)} lost |`,
        `| PostgreSQL bytes per task (tasks + events, with indexes), ${on} | ${fmt(r.bytesPerTask)} |`,
      );
    }
    if (phases.includes("retention")) {
      await settled(env);
      const r = await retentionPhase(env, Number(opts["retention-tasks"]), Number(opts["lag-rate"]));
      rows.push(
        `| retention pass over ${fmt(r.tasks)} tasks at ${fmt(r.rate)} events/s, ${on} | deleted ${fmt(r.deletedTasks)} tasks and ${fmt(r.deletedEvents)} events in ${r.passS.toFixed(0)} s; lag meanwhile p50 ${(r.p50 * 1000).toFixed(0)} ms, p99 ${(r.p99 * 1000).toFixed(0)} ms, max ${(r.max * 1000).toFixed(0)} ms (${r.probes} probe tasks); **${fmt(r.lost)} lost**, ${r.dropped} dropped |`,
      );
    }
    if (phases.includes("pages")) {
      await settled(env);
      const r = await pagesPhase(env, Number(opts["page-tasks"]));
      rows.push(`| pages with ${fmt(r.tasks)} tasks stored (30 requests each, p50 / p95), ${on} | ${r.results.join("; ")} |`);
    }
  } finally {
    await env.stop();
  }
}
console.log(["| measure | result |", "|---|---|", ...rows].join("\n"));

/** The single row of a one-row query. */
function one<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error("query returned no rows");
  return row;
}
