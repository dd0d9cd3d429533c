/**
 * The web server while PostgreSQL is away, with `crisper serve` as its own
 * process on real Redis and a real PostgreSQL, in the two ways a database
 * goes away:
 * - it hangs (every PostgreSQL process SIGSTOPped: connections stay open,
 *   nothing answers, new connections are never accepted), as in a stalled
 *   failover or a frozen VM;
 * - it refuses (a fast shutdown: `pg_ctl stop -m fast`), as in a restart.
 * Either way /healthz answers 200, /metrics 200 with the collector's own
 * metrics and `crisper_metrics_stale 1`, /readyz 503 naming the database,
 * pages a 503 page saying the database is not answering, and the API a 503;
 * all of them in bounded time (the measured times are printed). Afterwards
 * everything answers again. A screenshot of the 503 page lands in
 * test-results/screens/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { launchBrowser } from "../support/browser.ts";
import { type CrisperProcess, startCrisperProcess } from "../support/crisper.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const SCREENS = join(import.meta.dir, "..", "..", "test-results", "screens");
/** Far beyond the deadlines (2 s, 5 s): only a hang reaches it. */
const HANG = 20_000;
let redis: RedisServer;
let pg: PostgresServer;
let crisper: CrisperProcess;
let dataDir: string;
let cluster: Cluster;

/**
 * The PostgreSQL cluster behind test/support/postgres-server.ts, driven from
 * outside: freeze and thaw every one of its processes, stop it fast and
 * start it again on the same port.
 */
interface Cluster {
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Whether this test started the running postmaster (and must stop it). */
  startedHere: boolean;
}

async function clusterOf(url: string): Promise<Cluster> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const [row] = await sql<{ data_directory: string }[]>`show data_directory`;
  await sql.end();
  const data = row?.data_directory ?? "";
  // postmaster.pid: pid, data directory, start time, port, socket directory, …
  const pidFile = () => readFileSync(join(data, "postmaster.pid"), "utf8").split("\n");
  const [pid, , , port, socketDir] = pidFile();
  const bin = dirname(readlinkSync(`/proc/${pid}/exe`));
  const asPostgres = (cmd: string[]) => (process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd);
  const run = async (cmd: string[]) => {
    const p = Bun.spawn(asPostgres(cmd), { stdout: "ignore", stderr: "pipe" });
    const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
    if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}): ${err}`);
  };
  /** The postmaster first (it forks no more backends), then its children. */
  const processes = () => {
    const postmaster = Number(pidFile()[0]);
    const children = readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          // stat: pid (comm) state ppid …; comm may hold spaces, so read after the last ")".
          const stat = readFileSync(`/proc/${d}/stat`, "utf8");
          return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster;
        } catch {
          return false;
        }
      })
      .map(Number);
    return [postmaster, ...children];
  };
  const c: Cluster = {
    startedHere: false,
    freeze: () => {
      for (const p of processes()) process.kill(p, "SIGSTOP");
    },
    thaw: () => {
      for (const p of processes()) process.kill(p, "SIGCONT");
    },
    stop: () => run([join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "-t", "20", "stop"]),
    async start() {
      const options = `-h 127.0.0.1 -p ${port} -k ${socketDir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
      await run([join(bin, "pg_ctl"), "-D", data, "-w", "-t", "30", "-l", join(dirname(data), "restarted.log"), "-o", options, "start"]);
      c.startedHere = true;
    },
  };
  return c;
}

beforeAll(async () => {
  mkdirSync(SCREENS, { recursive: true });
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  cluster = await clusterOf(pg.url);
  dataDir = mkdtempSync(join(tmpdir(), "crisper-outage-web-"));
  crisper = await startCrisperProcess({
    BROKER_URL: redis.url,
    DATABASE_URL: await createDatabase(pg.url, "outage_web"),
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
  });
}, 120_000);

afterAll(async () => {
  try {
    cluster?.thaw();
  } catch {}
  await crisper?.stop();
  if (cluster?.startedHere) await cluster.stop().catch(() => {});
  await pg?.stop();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  path: string;
  status: number;
  ms: number;
  text: string;
  type: string;
}

/** One request, timed; a hang fails it with a clear message rather than the test's timeout. */
async function ask(path: string, accept = "text/html"): Promise<Answer> {
  const started = performance.now();
  try {
    const res = await fetch(crisper.url + path, { headers: { accept }, signal: AbortSignal.timeout(HANG) });
    const text = await res.text();
    return { path, status: res.status, ms: performance.now() - started, text, type: res.headers.get("content-type") ?? "" };
  } catch (e) {
    throw new Error(`${path}: no answer within ${HANG} ms (${e instanceof Error ? e.message : String(e)}); crisper:\n${crisper.output.text()}`);
  }
}

/** What every part answers while the database is away; the times are printed. */
async function checkWhileAway(how: string) {
  // All at once, as a monitoring system and a few people would.
  const [healthz, metrics, readyz, overview, tasks, workers, task, apiTasks] = await Promise.all([
    ask("/healthz"),
    ask("/metrics"),
    ask("/readyz"),
    ask("/"),
    ask("/tasks?state=FAILURE"),
    ask("/workers"),
    ask("/tasks/6f1c0d6e-8e4b-4c6a-9d1e-2f3a4b5c6d7e"),
    ask("/api/tasks", "application/json"),
  ]);
  const all = [healthz, metrics, readyz, overview, tasks, workers, task, apiTasks];
  console.log(`[outage] database ${how}: ${all.map((a) => `${a.path} ${a.status} in ${a.ms.toFixed(0)} ms`).join("; ")}`);

  expect(healthz.status).toBe(200);
  expect(metrics.status).toBe(200);
  expect(metrics.text).toContain("crisper_metrics_stale 1");
  for (const name of ["crisper_buffer_messages", "crisper_buffer_dropped_total", "crisper_store_errors_total", "crisper_messages_received_total"]) {
    expect(metrics.text).toContain(`# TYPE ${name}`);
  }
  // Gauges read from the store are left out, not shown stale.
  expect(metrics.text).not.toContain("# TYPE celery_worker_up");
  expect(readyz.status).toBe(503);
  expect(JSON.parse(readyz.text)).toMatchObject({ ok: false, down: ["database"], broker: "ok" });
  for (const page of [overview, tasks, workers, task]) {
    expect({ path: page.path, status: page.status }).toEqual({ path: page.path, status: 503 });
    expect(page.type).toContain("text/html");
    expect(page.text).toContain("The database is not answering");
    // It tries again by itself, without a script.
    expect(page.text).toContain('<meta http-equiv="refresh" content="10"');
  }
  expect(apiTasks.status).toBe(503);
  expect(JSON.parse(apiTasks.text).error).toContain("the database is not answering");
  return all;
}

async function checkBack() {
  await waitUntil(async () => (await ask("/readyz")).status === 200, 60_000, "readyz 200 again", 250);
  await waitUntil(async () => (await ask("/")).status === 200, 30_000, "the overview again", 250);
  expect((await ask("/tasks")).status).toBe(200);
  expect((await ask("/api/tasks", "application/json")).status).toBe(200);
  await waitUntil(async () => (await ask("/metrics")).text.includes("crisper_metrics_stale 0"), 30_000, "fresh metrics", 250);
}

describe("the web server while PostgreSQL is away", () => {
  test("before: everything answers", async () => {
    expect((await ask("/readyz")).status).toBe(200);
    expect((await ask("/")).status).toBe(200);
    const metrics = await ask("/metrics");
    expect(metrics.text).toContain("crisper_metrics_stale 0");
  });

  test("PostgreSQL hangs (SIGSTOP): bounded answers, a 503 page; then back", async () => {
    cluster.freeze();
    try {
      await checkWhileAway("hanging (SIGSTOP)");
      // Again, once the pool's connections are all stuck on the first round's queries.
      await checkWhileAway("still hanging");
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
        const started = performance.now();
        const res = await page.goto(`${crisper.url}/tasks`, { timeout: HANG });
        console.log(`[outage] Chromium: /tasks answered ${res?.status()} in ${(performance.now() - started).toFixed(0)} ms`);
        expect(res?.status()).toBe(503);
        expect(await page.locator("h1").innerText()).toBe("The database is not answering");
        await page.screenshot({ path: join(SCREENS, "database-down-503.png"), fullPage: true });
      } finally {
        await browser.close();
      }
    } finally {
      cluster.thaw();
    }
    await checkBack();
  }, 120_000);

  test("PostgreSQL refuses (fast shutdown): bounded answers, a 503 page; then back", async () => {
    await cluster.stop();
    try {
      await checkWhileAway("stopped (pg_ctl stop -m fast)");
    } finally {
      await cluster.start();
    }
    await checkBack();
  }, 120_000);
});
