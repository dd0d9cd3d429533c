/**
 * The scenario fixture: one redis-server (and PostgreSQL) for a test file,
 * and on them any number of scenarios, each with its own Redis dbs (broker
 * and result backend), database, data directory and Crisper, and the Celery
 * workers and Beats it starts. `stop()` ends all of it, newest first.
 *
 *   const servers = scenarios("detection", { store: "postgres" });
 *   beforeAll(() => servers.start());
 *   afterAll(() => servers.stop());
 *   const s = await servers.scenario({ DETECT_INTERVAL_S: "0.5" });
 *   await s.worker("w1@lab");
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CeleryProcess, type LabSettings, startBeat, startWorker } from "./celery.ts";
import { startCrisper, startCrisperProcess } from "./crisper.ts";
import { createDatabase, type PostgresServer, startPostgres } from "./postgres-server.ts";
import { type RedisServer, startRedis } from "./redis-server.ts";

/** Crisper's loops at test speed, for scenarios that wait on what they find. */
export const QUICK_INTERVALS = {
  ENABLE_EVENTS_INTERVAL_S: "1",
  QUEUE_SAMPLE_INTERVAL_S: "1",
  DETECT_INTERVAL_S: "0.5",
  INSPECT_INTERVAL_S: "1",
};

export interface ScenarioOptions {
  /** "postgres": a database per scenario on one PostgreSQL; "pglite": each Crisper's embedded store in its data directory. */
  store: "postgres" | "pglite";
  /** Extra redis-server arguments. */
  redisArgs?: string[];
}

type WorkerOptions = Partial<Parameters<typeof startWorker>[0]>;

export interface Scenario<C> {
  crisper: C;
  /** Celery's settings for this scenario's broker and result backend. */
  lab: LabSettings;
  /** The environment its Crisper runs with. */
  env: Record<string, string>;
  /** A Celery worker on the scenario's broker (concurrency 1 unless asked), killed with the scenario. */
  worker(hostname: string, opts?: WorkerOptions): Promise<CeleryProcess>;
  /** Celery Beat on the scenario's broker, killed with the scenario. */
  beat(opts: { beatIntervalS: number }): Promise<CeleryProcess>;
  /** Stops Crisper and starts it again on the same store, as a restart or deploy does. */
  restartCrisper(): Promise<C>;
}

/** Redis has 16 dbs: scenario n brokers on db n and keeps results on db n + 8. */
const RESULT_DB_OFFSET = 8;

/** A cleanup that hangs is reported after this long, not waited on for the rest of the run. */
const CLEANUP_PATIENCE_MS = 30_000;

export function scenarios(name: string, options: ScenarioOptions) {
  let redis: RedisServer | undefined;
  let pg: PostgresServer | undefined;
  let count = 0;
  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  const atStop = (what: string, run: () => Promise<unknown>) => cleanups.push({ what, run });

  async function create<C extends { stop(): Promise<void> }>(
    startCrisperWith: (env: Record<string, string>) => Promise<C>,
    env: Record<string, string>,
    settings: Partial<LabSettings>,
  ): Promise<Scenario<C>> {
    if (!redis) throw new Error("scenarios: start() before the first scenario");
    const db = count++;
    const brokerUrl = `redis://127.0.0.1:${redis.port}/${db}`;
    const resultBackend = `redis://127.0.0.1:${redis.port}/${db + RESULT_DB_OFFSET}`;
    const dataDir = mkdtempSync(join(tmpdir(), `crisper-${name}-`));
    atStop(`scenario ${db}'s data directory`, async () => rmSync(dataDir, { recursive: true, force: true }));
    const crisperEnv: Record<string, string> = {
      BROKER_URL: brokerUrl,
      RESULT_BACKEND_URL: resultBackend,
      DATA_DIR: dataDir,
      ...(pg ? { DATABASE_URL: await createDatabase(pg.url, `${name}${db}`) } : {}),
      ...env,
    };
    const lab: LabSettings = { brokerUrl, resultBackend, ...settings };
    const scenario: Scenario<C> = {
      crisper: await startCrisperWith(crisperEnv),
      lab,
      env: crisperEnv,
      async worker(hostname, opts = {}) {
        const w = await startWorker({ ...lab, hostname, concurrency: 1, ...opts });
        atStop(`scenario ${db}'s worker ${hostname}`, () => w.kill());
        return w;
      },
      async beat(opts) {
        const b = await startBeat({ ...lab, ...opts });
        atStop(`scenario ${db}'s Beat`, () => b.kill());
        return b;
      },
      async restartCrisper() {
        await scenario.crisper.stop();
        scenario.crisper = await startCrisperWith(crisperEnv);
        return scenario.crisper;
      },
    };
    atStop(`scenario ${db}'s Crisper`, () => scenario.crisper.stop());
    return scenario;
  }

  const bounded = async (what: string, p: Promise<unknown>) => {
    const t0 = performance.now();
    const done = await Promise.race([p.then(() => true, () => true), Bun.sleep(CLEANUP_PATIENCE_MS).then(() => false)]);
    if (!done) console.error(`[cleanup] ${what} still running after ${((performance.now() - t0) / 1000).toFixed(0)} s; moving on`);
  };

  return {
    async start() {
      [redis, pg] = await Promise.all([startRedis({ args: options.redisArgs }), options.store === "postgres" ? startPostgres() : undefined]);
    },
    /** A new scenario, its Crisper in this process as `crisper serve` runs it. */
    scenario: (env: Record<string, string> = {}, settings: Partial<LabSettings> = {}) => create(startCrisper, env, settings),
    /** A new scenario, its Crisper as its own `crisper serve` process (which a test can freeze). */
    scenarioProcess: (env: Record<string, string> = {}, settings: Partial<LabSettings> = {}) => create(startCrisperProcess, env, settings),
    /** Ends every scenario (workers, Beats, Crisper, data), newest first, then the servers. */
    async stop() {
      for (const { what, run } of cleanups.splice(0).reverse()) await bounded(`${name}: ${what}`, run());
      await bounded("redis and postgres", Promise.all([redis?.stop(), pg?.stop()]));
    },
  };
}
