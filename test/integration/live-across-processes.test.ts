/**
 * `crisper collect` and `crisper web` as separate processes on one
 * PostgreSQL: a page open on the web process still goes live when the
 * collector stores a task, through PostgreSQL's NOTIFY.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config.ts";
import { type Running, run } from "../../src/processes.ts";
import { type CeleryProcess, sendTasks, startWorker } from "../support/celery.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

let redis: RedisServer;
let pg: PostgresServer;
let collect: Running;
let web: Running;
let worker: CeleryProcess;
let dataDir: string;

beforeAll(async () => {
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  dataDir = mkdtempSync(join(tmpdir(), "crisper-live-"));
  const parsed = parseConfig({
    BROKER_URL: redis.url,
    DATABASE_URL: await createDatabase(pg.url, "live"),
    DATA_DIR: dataDir,
    PORT: "0",
    LOG_LEVEL: "warn",
    ENABLE_EVENTS_INTERVAL_S: "1",
  });
  if ("error" in parsed) throw new Error(parsed.error);
  collect = await run(parsed.config, { collect: true, web: false, bot: false });
  web = await run(parsed.config, { collect: false, web: true, bot: false });
  worker = await startWorker({ brokerUrl: redis.url, hostname: "live@lab", concurrency: 1, taskEvents: true });
});

afterAll(async () => {
  await worker?.kill();
  await web?.stop();
  await collect?.stop();
  await Promise.all([redis?.stop(), pg?.stop()]);
  rmSync(dataDir, { recursive: true, force: true });
});

test("a task stored by the collector process reaches a page's SSE stream on the web process", async () => {
  expect(web.collector).toBeUndefined();
  const res = await fetch(`${web.url}/live`);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const readUntil = async (pattern: RegExp, ms: number) => {
    const end = Date.now() + ms;
    while (!pattern.test(seen)) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no ${pattern} on /live within ${ms} ms; got ${JSON.stringify(seen.slice(-300))}`);
      const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]);
      if (chunk?.value) seen += decoder.decode(chunk.value);
      if (chunk?.done) throw new Error("the /live stream ended");
    }
  };
  await readUntil(/event: hello/, 10_000);
  seen = "";
  const [id] = await sendTasks({ brokerUrl: redis.url }, [{ task: "labapp.add", args: [1, 2] }]);
  await readUntil(/event: tasks/, 30_000);
  await reader.cancel();
  // And the web process serves what the collector stored.
  const task = await (await fetch(`${web.url}/api/tasks/${id}`)).json();
  expect(task.task.name).toBe("labapp.add");
}, 120_000);
