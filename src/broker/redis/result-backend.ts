/**
 * Celery's Redis result backend, read as a third party: each result is
 * stored under `celery-task-meta-<task id>` and PUBLISHed on a channel of
 * the same name. Wire facts: celery-wire.md, "Result backend (Redis)".
 * The result backend is a server of its own (RESULT_BACKEND_URL), possibly
 * not the broker's, and without kombu's key prefix.
 */
import type { Redis } from "ioredis";
import { RESULT_KEY_PREFIX } from "../../celery/result-meta.ts";
import type { Logger } from "../../log.ts";
import type { BrokerPort } from "../port.ts";
import { commandConnection, ensureConnected, quit } from "./connection.ts";
import { escapeGlob } from "./keys.ts";

/** The channels every result is published on. */
export const RESULT_CHANNELS = `${escapeGlob(RESULT_KEY_PREFIX)}*`;

export interface ResultBackend extends Pick<BrokerPort, "getResult"> {
  close(): Promise<void>;
}

export function redisResultBackend(url: string | undefined, log: Logger): ResultBackend {
  let connection: Redis | null = null;
  return {
    async getResult(taskId) {
      if (!url) return null;
      connection ??= commandConnection(url, "crisper-results", "result backend", log);
      await ensureConnected(connection);
      return connection.get(RESULT_KEY_PREFIX + taskId);
    },
    async close() {
      if (connection) await quit(connection);
    },
  };
}
