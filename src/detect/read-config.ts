/**
 * Reads the workers' configuration over remote control (`conf` with
 * defaults, `stats`, `registered`: celery/worker-config.ts) when a worker
 * comes online and every WORKER_CONFIG_INTERVAL_S after, and stores it with
 * its memory (store/queries/worker-config.ts). It runs beside the detection
 * pass, not in it: a worker slow to answer must not delay the checks.
 */
import type { BrokerPort } from "../broker/port.ts";
import { CONFIG_REQUESTS, workerSettings } from "../celery/worker-config.ts";
import { errorText, type Logger } from "../log.ts";
import type { Database } from "../store/database.ts";
import { saveWorkerConfig } from "../store/queries/worker-config.ts";

/** How long to wait for the workers' replies. */
const REPLY_TIMEOUT_MS = 3000;
/** A worker that did not answer is asked again after this long, not a whole interval later. */
const RETRY_AFTER_S = 30;
/** Workers asked in one request. */
const MAX_ASKED = 100;
const MAX_TRACKED = 5000;

export interface OnlineWorker {
  hostname: string;
  /** When its latest worker-online arrived; a later one is a restart, read again. */
  onlineAt: number | null;
}

export interface ConfigReader {
  /** Starts reading the workers that are due, unless a reading is under way; never throws. */
  read(now: number, online: readonly OnlineWorker[]): void;
  /** Resolves when the reading under way (if any) is done. */
  settled(): Promise<void>;
}

export function createConfigReader(o: { database: Database; broker: BrokerPort | null; intervalS: number; log: Logger }): ConfigReader {
  /** Per worker: when it last answered, when last asked, and its onlineAt then. */
  const seen = new Map<string, { answeredAt: number | null; askedAt: number; onlineAt: number | null }>();
  let running: Promise<void> | null = null;

  function due(now: number, w: OnlineWorker): boolean {
    const s = seen.get(w.hostname);
    if (!s) return seen.size < MAX_TRACKED;
    if (w.onlineAt !== null && w.onlineAt !== s.onlineAt) return true;
    if (s.answeredAt === null || s.answeredAt < s.askedAt) return now - s.askedAt >= Math.min(RETRY_AFTER_S, o.intervalS);
    return now - s.answeredAt >= o.intervalS;
  }

  async function ask(broker: BrokerPort, now: number, workers: OnlineWorker[]) {
    const destination = workers.map((w) => w.hostname);
    for (const w of workers) seen.set(w.hostname, { answeredAt: seen.get(w.hostname)?.answeredAt ?? null, askedAt: now, onlineAt: w.onlineAt });
    const opts = { destination, limit: destination.length, timeoutMs: REPLY_TIMEOUT_MS };
    const [conf, stats, registered] = await Promise.all(CONFIG_REQUESTS.map((r) => broker.call(r.method, { ...r.arguments }, opts).catch(() => ({}) as Record<string, unknown>)));
    for (const w of workers) {
      // Replies are keyed by the node name; only those asked are read.
      const settings = workerSettings({ conf: conf?.[w.hostname], stats: stats?.[w.hostname], registered: registered?.[w.hostname] });
      if (!settings) continue;
      const at = Date.now() / 1000;
      await saveWorkerConfig(o.database, w.hostname, settings, w.onlineAt === null ? null : new Date(w.onlineAt * 1000), new Date(at * 1000));
      const s = seen.get(w.hostname);
      if (s) s.answeredAt = at;
    }
  }

  return {
    read(now, online) {
      const { broker } = o;
      if (!broker || running) return;
      const wanted = online.filter((w) => due(now, w)).slice(0, MAX_ASKED);
      // Forget workers no longer online, so the map stays the size of the cluster.
      const live = new Set(online.map((w) => w.hostname));
      for (const h of seen.keys()) if (!live.has(h)) seen.delete(h);
      if (!wanted.length) return;
      running = ask(broker, now, wanted)
        .catch((e) => {
          o.log.once("read-config", `could not read the workers' configuration: ${errorText(e)}`);
        })
        .finally(() => {
          running = null;
        });
    },
    settled: async () => {
      await running;
    },
  };
}
