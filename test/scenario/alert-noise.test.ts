/**
 * Alert noise on the real thing (Celery 5.2 workers, redis-server,
 * PostgreSQL, Crisper as `crisper serve` runs it, Slack's Web API stood in
 * for): what the alert channel sees is one post when something goes wrong
 * and one when it is over, not a post for every restart or stream cut.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { type CeleryProcess, type LabSettings, sendTasks, startWorker } from "../support/celery.ts";
import { type CrisperUnderTest, startCrisper } from "../support/crisper.ts";
import { type FakeSlack, messageText, startFakeSlack } from "../support/fake-slack.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

let redis: RedisServer;
let pg: PostgresServer;
let slack: FakeSlack;
let db = 0;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [redis, pg, slack] = await Promise.all([startRedis(), startPostgres(), startFakeSlack()]);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error(`[cleanup] ${(e as Error).message}`));
  await Promise.all([redis?.stop(), pg?.stop(), slack?.stop()]);
});

const until = (what: string, check: () => Promise<boolean> | boolean, ms = 60_000) => waitUntil(check, ms, what, 200);

/** A fresh Redis db, database, Slack channel and Crisper; `restart` stops it and starts another on the same database. */
async function scenario(env: Record<string, string> = {}) {
  db++;
  const channel = `#alerts-${db}`;
  const brokerUrl = `redis://127.0.0.1:${redis.port}/${db}`;
  const resultBackend = `redis://127.0.0.1:${redis.port}/${db + 8}`;
  const lab: LabSettings = { brokerUrl, resultBackend };
  const dataDir = mkdtempSync(join(tmpdir(), "crisper-noise-"));
  const settings = {
    BROKER_URL: brokerUrl,
    RESULT_BACKEND_URL: resultBackend,
    DATABASE_URL: await createDatabase(pg.url, `noise${db}`),
    DATA_DIR: dataDir,
    ENABLE_EVENTS_INTERVAL_S: "1",
    QUEUE_SAMPLE_INTERVAL_S: "1",
    DETECT_INTERVAL_S: "0.5",
    INSPECT_INTERVAL_S: "1",
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_SIGNING_SECRET: "noise-secret",
    SLACK_ALERT_CHANNEL: channel,
    SLACK_API_URL: slack.apiUrl,
    SLACK_POLL_INTERVAL_S: "0.5",
    ...env,
  };
  let crisper: CrisperUnderTest | null = await startCrisper(settings);
  const workers: CeleryProcess[] = [];
  cleanups.push(async () => {
    for (const w of workers) await w.kill();
    await crisper?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const running = () => {
    if (!crisper) throw new Error("Crisper is not running");
    return crisper;
  };
  return {
    lab,
    crisper: running,
    async restart() {
      const old = running();
      crisper = null;
      await old.stop();
      crisper = await startCrisper(settings);
    },
    async worker(hostname: string, opts: Partial<Parameters<typeof startWorker>[0]> = {}) {
      const w = await startWorker({ ...lab, hostname, concurrency: 1, ...opts });
      workers.push(w);
      return w;
    },
    alerts: async (status = "all") => (await running().get(`/api/alerts?status=${status}&limit=500`)).body.alerts as any[],
    /** What this scenario's channel received: alert posts, and resolutions (in an alert's thread). */
    posts: () => {
      const mine = slack.posts().filter((p) => p.channel === channel);
      const text = (p: Record<string, any>) => messageText({ text: p.text, blocks: p.blocks });
      return { alerts: mine.filter((p) => !p.thread_ts).map(text), resolutions: mine.filter((p) => p.thread_ts).map(text) };
    },
  };
}

describe("alert noise", () => {
  test("a Crisper restart neither resolves nor reopens a dead worker's alerts; the worker's return still resolves it", async () => {
    const s = await scenario();
    // A healthy worker on another queue: the restart is no gap in what Crisper heard.
    await s.worker("steady@lab", { queues: ["other"] });
    const victim = await s.worker("victim@lab", { prefetchMultiplier: 4 });
    const [running, ...prefetched] = await sendTasks(s.lab, [1, 2, 3].map(() => ({ task: "labapp.sleepy", args: [120] })));
    await until("task started", async () => (await s.crisper().get(`/api/tasks/${running}`)).body?.task?.state === "STARTED");
    await until("reserved seen", async () => {
      const v = (await s.crisper().get("/api/workers")).body.workers.find((x: any) => x.hostname === "victim@lab");
      return v?.reserved === prefetched.length;
    });

    await victim.kill();
    const watched = (a: any) =>
      (a.kind === "worker_offline" && a.subject === "victim@lab") ||
      (a.kind === "task_lost" && a.subject === running) ||
      (a.kind === "prefetched_stranded" && a.subject === "victim@lab");
    let before: any[] = [];
    await until("worker_offline, task_lost and prefetched_stranded open", async () => {
      before = (await s.alerts("open")).filter(watched);
      return before.length === 3;
    });
    await until("the three posted to Slack", () => s.posts().alerts.filter((t) => t.includes("victim@lab")).length >= 3);
    const postedBefore = s.posts();
    expect(postedBefore.resolutions).toEqual([]);

    await s.restart();
    const restartedAt = performance.now();
    // Past a whole heartbeat window of listening (2 × freq + grace = 6 s), pass after pass.
    let passes = 0;
    while (passes < 6 || performance.now() - restartedAt < 12_000) {
      await s.crisper().detector.nextPass();
      passes++;
    }
    // One more poll of the Slack poster after the last pass.
    await Bun.sleep(1000);

    const after = (await s.alerts("all")).filter(watched);
    // The same alerts, still open, never resolved in between, and no second one.
    expect(after.map((a) => [a.kind, a.id, a.status, a.resolved_at]).sort()).toEqual(before.map((a) => [a.kind, a.id, "open", null]).sort());
    const postedAfter = s.posts();
    expect(postedAfter.resolutions).toEqual([]);
    expect(postedAfter.alerts).toEqual(postedBefore.alerts);

    // The worker really comes back: worker_offline resolves, once; the task it held stays lost.
    await s.worker("victim@lab", { prefetchMultiplier: 4 });
    const offline = before.find((a) => a.kind === "worker_offline");
    await until("worker_offline resolved", async () => (await s.alerts("all")).find((a) => a.id === offline.id)?.status === "resolved");
    const lost = before.find((a) => a.kind === "task_lost");
    expect((await s.alerts("all")).find((a) => a.id === lost.id)?.status).toBe("open");
    expect((await s.alerts("all")).filter((a) => a.kind === "worker_offline")).toHaveLength(1);
    const offlineResolved = (t: string) => t.includes("Resolved: Worker offline: victim@lab");
    await until("its resolution posted", () => s.posts().resolutions.some(offlineResolved));
    await s.crisper().detector.nextPass();
    expect(s.posts().resolutions.filter(offlineResolved)).toHaveLength(1);
  }, 240_000);

  test("three stream cuts in a row: one event_gap counting them, resolved once after the steady window", async () => {
    // A window long enough that a slow machine cannot let it lapse between two cuts.
    const s = await scenario({ EVENT_GAP_MERGE_S: "15" });
    await s.worker("steady@lab");
    await until("worker online", async () => (await s.crisper().get("/api/workers")).body.workers.some((w: any) => w.hostname === "steady@lab" && w.status === "online"));
    const collector = s.crisper().collector;
    if (!collector) throw new Error("no collector");
    const raw = new Redis(s.lab.brokerUrl);
    cleanups.push(async () => void raw.disconnect());
    let firstId: number | null = null;
    for (let cut = 1; cut <= 3; cut++) {
      // What Redis does to a subscriber past its output buffer limit: it closes the connection.
      const clients = String(await raw.client("LIST")).split("\n");
      const events = clients.find((l) => l.includes(" name=crisper-events ") && l.includes(` db=${db} `));
      const id = /\bid=(\d+)/.exec(events ?? "")?.[1];
      if (!id) throw new Error(`no crisper-events client in:\n${clients.join("\n")}`);
      await raw.client("KILL", "ID", id);
      await until(`cut ${cut} over`, () => collector.gaps.length >= cut && collector.gaps.every((g) => g.to !== null) && collector.streamUpSince !== null);
      await s.crisper().detector.nextPass();
      const open = (await s.alerts("open")).filter((a) => a.kind === "event_gap");
      expect(open).toHaveLength(1);
      firstId ??= open[0].id;
      expect(open[0]).toMatchObject({ id: firstId, details: { cuts: cut } });
    }
    let gap: any;
    await until(
      "event_gap resolved after the steady window",
      async () => {
        gap = (await s.alerts("all")).find((a) => a.kind === "event_gap");
        return gap?.status === "resolved";
      },
      120_000,
    );
    expect(gap.id).toBe(firstId);
    expect(gap.details).toMatchObject({ cuts: 3, merge_window_s: 15, interrupted_since: null });
    expect(gap.summary).toContain("interrupted 3 times");
    expect(Date.parse(gap.resolved_at) - Date.parse(gap.details.last_back_at)).toBeGreaterThanOrEqual(15_000);
    const all = await s.alerts("all");
    expect(all.map((a) => a.kind)).toEqual(["event_gap"]);
    // Slack: one post when it opened, one resolution.
    await until("resolution posted", () => s.posts().resolutions.length >= 1);
    await s.crisper().detector.nextPass();
    expect(s.posts().alerts.filter((t) => t.includes("Event gap"))).toHaveLength(1);
    expect(s.posts().resolutions).toHaveLength(1);
  }, 240_000);
});
