/**
 * PostgreSQL going away under load, on real parts: a redis-server carrying
 * Celery-shaped events (bench/traffic.ts), a real PostgreSQL stopped the way
 * a managed one is on failover or maintenance (`pg_ctl stop -m fast`) or
 * with its backends terminated, and `crisper serve` as its own process.
 * Every published task event has a unique key, so "every event is stored"
 * is an exact count.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { publishTraffic } from "../../bench/traffic.ts";
import { type CrisperProcess, startCrisperProcess } from "../support/crisper.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

let pg: PostgresServer;
let redis: RedisServer;
const dirs: string[] = [];

beforeAll(async () => {
  [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
});

afterAll(async () => {
  await pg?.stop();
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh database and data directory, and Crisper's environment for them. */
async function setting(name: string, extra: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), `crisper-${name}-`));
  dirs.push(dataDir);
  const databaseUrl = await createDatabase(pg.url, name);
  const env = { BROKER_URL: redis.url, DATABASE_URL: databaseUrl, DATA_DIR: dataDir, ENABLE_EVENTS: "false", ...extra };
  return { dataDir, databaseUrl, env };
}

/** Task events stored. A client per call: PostgreSQL restarts under these tests. */
async function storedEvents(databaseUrl: string): Promise<number> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from events`;
    return row?.n ?? 0;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function allStored(databaseUrl: string, expected: number, what: string) {
  let stored = 0;
  await waitUntil(
    async () => {
      stored = await storedEvents(databaseUrl).catch(() => -1);
      return stored >= expected;
    },
    180_000,
    `${expected} events stored (${what})`,
    500,
  ).catch((e: Error) => {
    throw new Error(`${e.message}: ${stored} stored`);
  });
  return stored;
}

/** Polls /healthz until stopped; every answer that is not a 200 is kept. */
function watchHealth(crisper: CrisperProcess) {
  const failures: string[] = [];
  let polls = 0;
  let on = true;
  const done = (async () => {
    while (on) {
      polls++;
      const status = await fetch(`${crisper.url}/healthz`, { signal: AbortSignal.timeout(10_000) }).then(
        (r) => String(r.status),
        (e: Error) => e.message,
      );
      if (status !== "200") failures.push(status);
      await Bun.sleep(250);
    }
  })();
  return {
    async stop() {
      on = false;
      await done;
      return { failures, polls };
    },
  };
}

async function metric(crisper: CrisperProcess, name: string): Promise<number | null> {
  const res = await fetch(`${crisper.url}/metrics`).catch(() => null);
  if (!res || res.status !== 200) return null;
  const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : null;
}

describe("PostgreSQL goes away while events flow", () => {
  test(
    "fast-stopped for 30 s under 2,000 events/s, then started: every event is stored, and Crisper serves throughout",
    async () => {
      const s = await setting("outage");
      const crisper = await startCrisperProcess(s.env);
      try {
        const health = watchHealth(crisper);
        let stopped = false;
        let restarted: Promise<void> | null = null;
        const outage = { metrics: [] as (number | null)[] };
        const published = await publishTraffic(redis.url, 2000, 40, (elapsed) => {
          if (elapsed >= 5 && !stopped) {
            stopped = true;
            restarted = (async () => {
              await pg.fastStop();
              const until = Date.now() + 30_000;
              while (Date.now() < until) {
                // What /metrics says during the outage (not asserted: see the README, Reliability).
                outage.metrics.push(await metric(crisper, "crisper_store_writable"));
                await Bun.sleep(2000);
              }
              await pg.startAgain();
            })();
          }
        });
        await restarted;
        const stored = await allStored(s.databaseUrl, published.events, "after the restart");
        expect(stored).toBe(published.events);
        const { failures, polls } = await health.stop();
        expect(polls).toBeGreaterThan(100);
        expect(failures).toEqual([]);
        // The outage is said once when it starts and once when it ends.
        await crisper.output.waitFor(/cannot write to the database/, 1000, "outage logged");
        await crisper.output.waitFor(/database writes work again after/, 1000, "recovery logged");
        expect(await metric(crisper, "crisper_buffer_dropped_total")).toBe(0);
        expect(await metric(crisper, "crisper_store_writable")).toBe(1);
        console.error(`[outage] ${published.events} events published and stored; /metrics during the outage: ${JSON.stringify(outage.metrics)}`);
      } finally {
        await crisper.stop();
      }
    },
    300_000,
  );

  test(
    "every Crisper backend terminated (pg_terminate_backend), again and again: every event is stored",
    async () => {
      const s = await setting("terminated");
      const crisper = await startCrisperProcess(s.env);
      const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
      try {
        const health = watchHealth(crisper);
        let terminations = 0;
        let killing: Promise<void> | null = null;
        const published = await publishTraffic(redis.url, 2000, 15, (elapsed) => {
          if (elapsed >= 3 && !killing) {
            killing = (async () => {
              for (let i = 0; i < 20; i++) {
                const rows = await admin<{ pid: number }[]>`
                  select pg_terminate_backend(pid) as pid from pg_stat_activity
                  where datname = 'terminated' and application_name like 'crisper%'`;
                terminations += rows.length;
                await Bun.sleep(250 + Math.random() * 250);
              }
            })();
          }
        });
        await killing;
        expect(terminations).toBeGreaterThan(20);
        const stored = await allStored(s.databaseUrl, published.events, "after the terminations");
        expect(stored).toBe(published.events);
        expect((await health.stop()).failures).toEqual([]);
        expect(await metric(crisper, "crisper_buffer_dropped_total")).toBe(0);
      } finally {
        await admin.end({ timeout: 1 });
        await crisper.stop();
      }
    },
    300_000,
  );

  test(
    "with a small buffer the outage spills to the spool; stopped mid-outage, the next start writes it all",
    async () => {
      const s = await setting("spool", { COLLECTOR_BUFFER_MESSAGES: "1000", SPOOL_MAX_MB: "64" });
      const first = await startCrisperProcess(s.env);
      let published = 0;
      let second: CrisperProcess | null = null;
      try {
        published += (await publishTraffic(redis.url, 2000, 3)).events;
        await pg.fastStop();
        published += (await publishTraffic(redis.url, 2000, 10)).events;
        const spooled = await metric(first, "crisper_spool_messages");
        await first.output.waitFor(/new messages go to the spool/, 10_000, "spilling to the spool");
        // Stopped while PostgreSQL is down: what it holds stays in the spool.
        await first.stop();
        await first.output.waitFor(/kept in the spool for the next start/, 1000, "spool kept at shutdown");
        expect(readdirSync(join(s.dataDir, "spool")).some((f) => f.endsWith(".seg"))).toBe(true);

        await pg.startAgain();
        second = await startCrisperProcess(s.env);
        await second.output.waitFor(/spool in .* holds \d+ messages from before/, 10_000, "spool taken over");
        published += (await publishTraffic(redis.url, 2000, 3)).events;
        const stored = await allStored(s.databaseUrl, published, "after the restart with a spool");
        expect(stored).toBe(published);
        expect(await metric(second, "crisper_buffer_dropped_total")).toBe(0);
        await waitUntil(() => readdirSync(join(s.dataDir, "spool")).every((f) => !f.endsWith(".seg")), 30_000, "spool emptied", 200);
        console.error(`[spool] ${published} events published and stored; spool held ${spooled} messages during the outage (null: /metrics did not answer)`);
      } finally {
        await first.stop();
        await second?.stop();
      }
    },
    300_000,
  );
});
