/**
 * A real web server (Bun.serve with Crisper's app) over a store holding the
 * real captures' tasks and workers, plus an open and a resolved alert, a
 * queue sample and a declared schedule: every answer of the API has
 * something in it. For the OpenAPI, MCP and /metrics tests.
 */
import type { BrokerPort } from "../../src/broker/port.ts";
import { syncAlerts } from "../../src/alerts/store.ts";
import { buildBatch } from "../../src/collector/batch.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { createAuth } from "../../src/http/auth.ts";
import { logger } from "../../src/log.ts";
import { declareSchedule } from "../../src/store/queries/detect.ts";
import { insertQueueSamples, writeBatch } from "../../src/store/writes.ts";
import { createApp } from "../../src/web/app.ts";
import { captureMessages, readCapture } from "../fixtures/captures.ts";
import { emptyStore, type TestStore } from "./store.ts";

/** Tasks of the captures: a task retried twice then failed, and one run twice at retries 0 (two workers killed). */
export const FLAKY = "c1f5847a-a3de-43a7-8d91-07bc215c2d09";
export const DUP = "7c50fa48-dbd7-42d5-a155-777ec02a207c";
/** The capture's clock: after the last event. */
export const CAPTURE_NOW = 1795476100;

export interface ServedStore {
  url: string;
  app: ReturnType<typeof createApp>;
  store: TestStore;
  stop(): Promise<void>;
}

/** `auth`: CRISPER_AUTH for the server (none: open and read-only); `broker`: for control commands (revoke). */
export async function servedStore(name: string, opts: { auth?: string; broker?: BrokerPort } = {}): Promise<ServedStore> {
  const store = await emptyStore(name);
  const { database } = store;
  const events = [
    ...captureMessages(readCapture("celery-5.2-redis-mixed.jsonl")),
    ...captureMessages(readCapture("celery-5.2-redis-faults.jsonl")),
  ].flatMap((m) => decodeRawMessage(m).events);
  await writeBatch(database, buildBatch(events));
  const at = new Date(CAPTURE_NOW * 1000);
  await syncAlerts(database, "duplicate_execution", [{ kind: "duplicate_execution", subject: DUP, summary: "ran twice at retries 0", details: { workers: ["dup1@lab", "dup2@lab"] } }], at);
  await syncAlerts(database, "worker_offline", [{ kind: "worker_offline", subject: "dup1@lab", summary: "dup1@lab stopped sending heartbeats", details: {} }], at);
  await syncAlerts(database, "worker_offline", [], at, { resolveMissing: true });
  await insertQueueSamples(database, [{ name: "celery", depth: 7, byPriority: { "0": 4, "3": 3 }, unacked: 2, oldestUnackedAgeS: 12.5, sampledAt: CAPTURE_NOW }]);
  await declareSchedule(database, { name: "nightly", task: "labapp.report", expectedIntervalS: null, cron: "0 3 * * *" }, at);
  const app = createApp({ database, log: logger("web", () => {}), now: () => CAPTURE_NOW, auth: opts.auth ? createAuth(opts.auth) : undefined, broker: opts.broker });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  return {
    url: `http://127.0.0.1:${server.port}`,
    app,
    store,
    async stop() {
      await server.stop(true);
      await store.remove();
    },
  };
}
