/**
 * The ioredis connections the Redis adapter holds, and how each reports an
 * outage. Nothing Celery-specific lives here.
 *
 * Connections are separate on purpose: a subscriber connection only reads
 * (Redis cuts a PUB/SUB client that falls behind, so nothing else may share
 * or slow its socket), blocking BRPOPs for control replies get their own
 * short-lived connection, and everything else shares one command connection
 * per server (the broker's, and the result backend's when configured).
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../../log.ts";
import { type BrokerReachability, BrokerUnreachable } from "../reachability.ts";

/** Reconnect forever, quickly at first: a monitor must come back on its own. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

// lazyConnect: connections open on their first command, so an unused one
// (the result backend's, without RESULT_BACKEND_URL) never does.
const BASE: RedisOptions = { retryStrategy, lazyConnect: true };

/** Last connection error per client, for a plain "unreachable" message. */
const lastErrors = new WeakMap<Redis, string>();

/**
 * A connection for commands. They fail after one reconnect attempt so
 * /readyz and sampling report an outage promptly instead of queueing behind
 * it. Errors go to `reachability` when given (the broker's: one line for one
 * cause); otherwise each distinct one is logged once, as `<what> connection: <error>`.
 */
export function commandConnection(url: string, connectionName: string, what: string, log: Logger, reachability?: BrokerReachability): Redis {
  const r = new Redis(url, { ...BASE, maxRetriesPerRequest: 1, connectionName });
  r.on("error", (e) => {
    lastErrors.set(r, e.message);
    if (reachability) reachability.down(e.message);
    else log.once(`${connectionName}:${e.message}`, `${what} connection: ${e.message}`);
  });
  if (reachability) r.on("ready", () => reachability.up());
  return r;
}

/**
 * A connection for PSUBSCRIBE alone: its commands wait out any outage, and
 * ioredis subscribes again after every reconnect. The caller listens for
 * its errors and drops.
 */
export function subscriberConnection(url: string, connectionName: string): Redis {
  return new Redis(url, { ...BASE, autoResubscribe: true, maxRetriesPerRequest: null, connectionName });
}

/**
 * A connection of its own for blocking commands (BRPOP), so that they hold
 * up nothing else; same server and settings as `of`, connected at once.
 * Its errors surface as failed commands.
 */
export function blockingConnection(of: Redis, connectionName: string): Redis {
  const r = of.duplicate({ connectionName, lazyConnect: false });
  r.on("error", () => {});
  return r;
}

/**
 * Fails fast, with the reason, while a client is reconnecting: a command
 * would otherwise wait out ioredis's retries and fail with a message about
 * its settings.
 */
export async function ensureConnected(r: Redis) {
  if (r.status === "wait") {
    try {
      await r.connect();
    } catch (e) {
      throw new BrokerUnreachable(lastErrors.get(r) ?? (e as Error).message);
    }
  }
  if (r.status === "connecting" || r.status === "connect") {
    // Mid-handshake: worth a short wait, not an error.
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        r.off("ready", done);
        r.off("close", done);
        resolve();
      };
      const timer = setTimeout(done, 2000);
      r.once("ready", done);
      r.once("close", done);
    });
  }
  if (r.status !== "ready") throw new BrokerUnreachable(lastErrors.get(r) ?? r.status);
}

/** Closes politely when connected, at once otherwise. */
export async function quit(r: Redis) {
  try {
    if (r.status === "ready") await r.quit();
    else r.disconnect();
  } catch {
    r.disconnect();
  }
}
