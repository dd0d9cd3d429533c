/**
 * Asks the workers what they hold (`reserved`, `active` remote control) every
 * INSPECT_INTERVAL_S and records the replies on their rows: what the workers
 * page shows, and the prefetched messages prefetched_stranded names when a
 * worker dies.
 */
import type { BrokerPort } from "../broker/port.ts";
import { isBrokerUnreachable } from "../broker/reachability.ts";
import { errorText, type Logger } from "../log.ts";
import type { Database } from "../store/database.ts";
import { recordInspection } from "../store/queries/detect.ts";

/** How long to wait for the workers' replies. */
const REPLY_TIMEOUT_MS = 1000;

export interface Inspector {
  /** Asks, unless it was done less than the interval ago. */
  inspect(now: number): Promise<void>;
  /** The next `inspect` asks whatever the interval (after a stream gap). */
  again(): void;
}

export function createInspector(o: { database: Database; broker: BrokerPort | null; brokerName?: string; intervalS: number; log: Logger }): Inspector {
  let lastInspection = 0;
  return {
    async inspect(now) {
      const { broker } = o;
      if (!broker || now - lastInspection < o.intervalS) return;
      lastInspection = now;
      try {
        const [reserved, active] = await Promise.all([
          broker.call("reserved", {}, { timeoutMs: REPLY_TIMEOUT_MS }),
          broker.call("active", {}, { timeoutMs: REPLY_TIMEOUT_MS }),
        ]);
        for (const host of new Set([...Object.keys(reserved), ...Object.keys(active)])) {
          const r: unknown = reserved[host];
          const a: unknown = active[host];
          await recordInspection(o.database, host.slice(0, 255), Array.isArray(r) ? r : [], Array.isArray(a) ? a : [], new Date(now * 1000), o.brokerName);
        }
      } catch (e) {
        // An unreachable broker is said once, for everything (broker/reachability.ts).
        if (isBrokerUnreachable(e)) return;
        o.log.once("inspect", `could not ask workers what they hold: ${errorText(e)}`);
      }
    },
    again() {
      lastInspection = 0;
    },
  };
}
