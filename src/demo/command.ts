/**
 * `crisper demo`: Crisper watching a simulated Celery cluster (scenario.ts)
 * that stages every silent failure on a loop, on an embedded database in a
 * temporary directory (or DATA_DIR). Nothing else is needed: no Redis, no
 * Python, no PostgreSQL. `crisper demo --real` runs a real local cluster
 * instead (real.ts).
 *
 * The detectors are not told they are in a demo: the scenario is timed
 * against settings given through the ordinary configuration (short
 * thresholds, the two Beat schedules declared in BEAT_SCHEDULES), exactly as
 * a user would set them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, parseConfig } from "../config.ts";
import { logger, setLogLevel } from "../log.ts";
import { run } from "../processes.ts";
import { keepServingOnUncaughtErrors } from "../supervise.ts";
import { createMemoryBroker } from "./memory-broker.ts";
import { DEMO_TIMING, startDemoCluster } from "./scenario.ts";
import { BEAT_SCHEDULE } from "./tasks.ts";
import { runRealDemo } from "./real.ts";

/** What every page of the demo says. */
export const DEMO_BANNER = {
  title: "Demo data.",
  text: "A simulated Celery cluster (crisper demo) that stages a failure of each kind every few minutes; nothing here comes from your systems.",
};

/**
 * The settings the simulated failures are timed against, as environment
 * variables (README, Configuration). Thresholds are short so that every
 * failure shows within a minute and a half.
 */
export const DEMO_SETTINGS: Record<string, string> = {
  BROKER_VISIBILITY_TIMEOUT: String(DEMO_TIMING.visibilityTimeoutS),
  BEAT_SCHEDULES: BEAT_SCHEDULE.map((s) => `${s.name}=${s.task}@${s.everyS}`).join(";"),
  TASK_STALL_THRESHOLDS: `reports.tasks.reconcile_accounts=${DEMO_TIMING.stallAfterS}`,
  QUEUE_BACKLOG_WINDOW_S: "30",
  QUEUE_BACKLOG_MIN_GROWTH: "20",
  QUEUE_SAMPLE_INTERVAL_S: "2",
  INSPECT_INTERVAL_S: "3",
  ENABLE_EVENTS_INTERVAL_S: "2",
};

/**
 * The demo's configuration: the user's environment for where to serve and
 * store, never for what to watch or whom to tell. A DATABASE_URL, a broker or
 * Slack set for real use must not receive simulated data.
 */
export function demoConfig(env: Record<string, string | undefined>, dataDir: string, extra: Record<string, string> = {}): { config: Config } | { error: string } {
  const kept = ["PORT", "HOST", "LOG_LEVEL", "CRISPER_AUTH", "PUBLIC_URL"];
  const base: Record<string, string | undefined> = Object.fromEntries(kept.map((k) => [k, env[k]]));
  return parseConfig({ ...base, ...DEMO_SETTINGS, ...extra, DATA_DIR: dataDir });
}

const USAGE = `Usage: crisper demo [--real]

  (no option)  a simulated Celery cluster, in this process: nothing else needed
  --real       a real local cluster: redis-server and Celery (python3 -m celery) must be installed

Serves on PORT (default 5555) and keeps its database in DATA_DIR (default: a
temporary directory, removed on exit).`;

export async function runDemo(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  const unknown = args.filter((a) => a !== "--real");
  if (unknown.length) {
    console.error(`crisper demo: unknown option ${JSON.stringify(unknown[0])}\n${USAGE}`);
    return 2;
  }
  const temporary = !env.DATA_DIR;
  const dataDir = env.DATA_DIR ?? mkdtempSync(join(tmpdir(), "crisper-demo-"));
  const cleanUp = () => {
    if (temporary) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (args.includes("--real")) return await runRealDemo(env, dataDir);
    return await simulated(env, dataDir);
  } finally {
    cleanUp();
  }
}

async function simulated(env: Record<string, string | undefined>, dataDir: string): Promise<number> {
  const parsed = demoConfig(env, dataDir);
  if ("error" in parsed) {
    console.error(`crisper demo: ${parsed.error}`);
    return 2;
  }
  const { config } = parsed;
  setLogLevel(config.LOG_LEVEL);
  const log = logger("demo");
  keepServingOnUncaughtErrors(log);
  const broker = createMemoryBroker();
  const running = await run(
    config,
    { collect: true, web: true, bot: false },
    { broker: broker.port, brokerName: "the simulated demo cluster", banner: DEMO_BANNER },
  );
  const cluster = startDemoCluster(broker.server, log);
  console.log(
    `\nCrisper demo: ${running.url}\n` +
      "  A simulated Celery cluster (4 workers on queues celery and reports, Beat with 2 schedules) in Celery's own wire format.\n" +
      "  Within about a minute and a half: a duplicate run, a worker killed mid-task, Beat stopping, a stalled task, a backlog;\n" +
      "  then again every few minutes. Ctrl-C to stop.\n",
  );
  await untilStopped(log);
  await cluster.stop();
  await running.stop();
  return 0;
}

/** Resolves on SIGINT or SIGTERM. */
export function untilStopped(log: { info(m: string): void }): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info(`${signal}: stopping`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
