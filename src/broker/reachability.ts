/**
 * Whether the watched broker can be reached: one state for the whole
 * process, so that one cause is one log line. Without it, a Crisper started
 * with no broker said so five times (the event subscription, the command
 * connection, queue sampling, `enable_events`, the detector's inspection).
 *
 * The adapter's connections report here (`down` on a connection error, `up`
 * once connected); the loops that call the broker stay quiet about failures
 * that are `BrokerUnreachable`, since this has said it. The overview page
 * reads `state` to say the same instead of an empty page.
 */
import type { Logger } from "../log.ts";

/** A broker call failed because the broker cannot be reached (nothing else). */
export class BrokerUnreachable extends Error {
  override name = "BrokerUnreachable";
  constructor(readonly reason: string) {
    super(`unreachable (${reason})`);
  }
}

export function isBrokerUnreachable(e: unknown): e is BrokerUnreachable {
  return e instanceof BrokerUnreachable;
}

export interface ReachabilityState {
  /** `unknown` until a connection has succeeded or failed. */
  status: "unknown" | "reachable" | "unreachable";
  /** The broker's URL, its password hidden. */
  url: string;
  /** Why it is unreachable (the last connection error). */
  reason: string | null;
  /** Since when it is in this status, unix seconds. */
  since: number;
  /** Whether it was ever reached in this process (never: most likely not started, or the wrong URL). */
  everReached: boolean;
}

export interface BrokerReachability {
  down(reason: string): void;
  up(): void;
  readonly state: ReachabilityState;
}

/** While the broker stays unreachable, the line is said again this often. */
export const REPEAT_EVERY_S = 600;

/** What to do about a broker never reached, as the log line says it (the overview page says the same in its own markup). */
export const NO_BROKER_ADVICE = "start your broker (redis-server), set BROKER_URL to the one your Celery uses, or try `crisper demo` for a simulated cluster";

export function brokerReachability(o: { url: string; log: Logger; now?: () => number; repeatEveryS?: number }): BrokerReachability {
  const now = o.now ?? (() => Date.now() / 1000);
  const repeatEveryS = o.repeatEveryS ?? REPEAT_EVERY_S;
  const state: ReachabilityState = { status: "unknown", url: o.url, reason: null, since: now(), everReached: false };
  let saidAt = 0;

  return {
    state,
    down(reason) {
      const t = now();
      if (state.status !== "unreachable") {
        Object.assign(state, { status: "unreachable", since: t });
        saidAt = 0;
      }
      state.reason = reason;
      if (saidAt !== 0 && t - saidAt < repeatEveryS) return;
      const first = saidAt === 0;
      saidAt = t;
      const still = first ? "" : `still, for ${Math.round((t - state.since) / 60)} min: `;
      if (state.everReached) o.log.warn(`${still}broker ${o.url} unreachable (${reason}); retrying`);
      else o.log.warn(`${still}no broker at ${o.url} (${reason}): ${NO_BROKER_ADVICE}; retrying`);
    },
    up() {
      const t = now();
      if (state.status === "unreachable") o.log.info(`broker ${o.url} reachable again after ${Math.round(t - state.since)} s`);
      if (state.status !== "reachable") Object.assign(state, { status: "reachable", since: t, reason: null, everReached: true });
    },
  };
}
