/**
 * Celery's event stream on a Redis broker, and the result backend's
 * publishes, both read with PSUBSCRIBE. Events: kombu publishes the
 * `celeryev` fanout exchange on `{prefix}/{db}.celeryev/{routing_key}`
 * (celery-wire.md, "Events"); results on `celery-task-meta-<task id>`
 * ("Result backend (Redis)").
 *
 * PUB/SUB keeps nothing: what is published while Crisper is disconnected is
 * gone for good, so every drop of the event stream is reported (the
 * collector records it as an event_gap).
 */
import type { Logger } from "../../log.ts";
import type { BrokerPort, RawMessage, StreamStatus } from "../port.ts";
import type { BrokerReachability } from "../reachability.ts";
import { quit, subscriberConnection } from "./connection.ts";
import { RESULT_CHANNELS } from "./result-backend.ts";

/** How long subscribe() waits for the broker before returning and retrying in the background. */
const SUBSCRIBE_WAIT_MS = 3000;

/** Much faster than Buffer#toString for ASCII (measured); invalid UTF-8 becomes U+FFFD. */
const TEXT = new TextDecoder();

export interface StreamOptions {
  brokerUrl: string;
  /** The PSUBSCRIBE pattern of the event channels. */
  eventChannels: string;
  resultBackendUrl?: string;
  log: Logger;
  /** Where the event subscription's connection errors go (one line for one cause). */
  reachability?: BrokerReachability;
}

export interface Streams extends Pick<BrokerPort, "subscribe"> {
  /** Ends every subscription; the drops that follow are ours, not outages. */
  close(): Promise<void>;
}

export function redisStreams(opts: StreamOptions): Streams {
  const { log } = opts;
  const live = new Set<PatternSubscription>();

  return {
    async subscribe(onMessage, onStatus) {
      const subs = [psubscribe(opts.brokerUrl, opts.eventChannels, "events", onMessage, onStatus, log, opts.reachability)];
      if (opts.resultBackendUrl) subs.push(subscribeResults(opts.resultBackendUrl, onMessage, log));
      for (const s of subs) live.add(s);
      // A broker that is down at start is an outage like any other: ioredis
      // keeps reconnecting and subscribes once it can (the command waits in
      // its offline queue); meanwhile /readyz says the broker is unreachable.
      await Promise.all(subs.map((s) => Promise.race([s.subscribed, Bun.sleep(SUBSCRIBE_WAIT_MS)])));
      return {
        async close() {
          await Promise.all(
            subs.map((s) => {
              live.delete(s);
              return s.close();
            }),
          );
        },
      };
    },

    async close() {
      const subs = [...live];
      live.clear();
      await Promise.all(subs.map((s) => s.close()));
    },
  };
}

/**
 * The result backend's publishes of stored results, on a Redis result
 * backend (whatever the broker: RabbitMQ's adapter uses this too). Its drops
 * are logged, not reported as event-stream gaps: the events stream is what
 * the gap record describes.
 */
export function subscribeResults(url: string, onMessage: (m: RawMessage) => void, log: Logger): PatternSubscription {
  const resultLog = (s: StreamStatus) => {
    if (s.state === "disconnected") log.warn(`result backend stream lost (${s.reason}); reconnecting`);
  };
  return psubscribe(url, RESULT_CHANNELS, "result-backend", onMessage, resultLog, log);
}

export interface PatternSubscription {
  /** Settles once Redis confirmed the PSUBSCRIBE; it may wait out an outage. */
  subscribed: Promise<unknown>;
  close(): Promise<void>;
}

/**
 * One PSUBSCRIBE on its own connection, subscribed again by ioredis after
 * every reconnect. Each drop is reported through `onStatus`, until close().
 */
function psubscribe(
  url: string,
  pattern: string,
  stream: RawMessage["stream"],
  onMessage: (m: RawMessage) => void,
  onStatus: (s: StreamStatus) => void,
  log: Logger,
  reachability?: BrokerReachability,
): PatternSubscription {
  const server = stream === "events" ? "broker" : "result backend";
  const sub = subscriberConnection(url, `crisper-${stream}`);
  let connected = false;
  let closed = false;
  let lastError = "connection closed";
  sub.on("pmessageBuffer", (_pattern: string, channel: Buffer, data: Buffer) => {
    onMessage({ stream, channel: TEXT.decode(channel), data: TEXT.decode(data), receivedAt: Date.now() / 1000 });
  });
  sub.on("error", (e: Error) => {
    lastError = e.message;
    if (reachability) reachability.down(e.message);
    else if (!connected) log.once(`unreachable:${stream}:${e.message}`, `${server} unreachable (${e.message}); retrying`);
  });
  sub.on("ready", () => {
    reachability?.up();
    if (!connected) {
      connected = true;
      onStatus({ state: "connected", at: Date.now() / 1000 });
    }
  });
  sub.on("close", () => {
    if (connected && !closed) {
      connected = false;
      onStatus({ state: "disconnected", at: Date.now() / 1000, reason: `${server}: ${lastError}` });
    }
    lastError = "connection closed";
  });
  const subscribed = sub.psubscribe(pattern);
  // Rejected only when the connection is closed first; nothing to report then.
  subscribed.catch(() => {});
  return {
    subscribed,
    async close() {
      closed = true;
      await quit(sub);
    },
  };
}
