/**
 * The Redis broker adapter: the broker port assembled from its parts, each
 * in a file of its own (wire facts in celery-wire.md):
 * - subscription.ts: the event stream and the result backend's publishes;
 * - queues.ts: queue depths by priority, and the `unacked` hash;
 * - pidbox.ts: remote control, with replies;
 * - result-backend.ts: stored results;
 * - health.ts: the server's memory, eviction policy and clients (INFO);
 * - connection.ts: the ioredis connections and their outages;
 * - keys.ts: where kombu keeps each of these in Redis;
 * - actions.ts: requeue a dead worker's messages, publish a task, purge a queue.
 */
import type { Logger } from "../../log.ts";
import type { BrokerPort } from "../port.ts";
import type { BrokerReachability } from "../reachability.ts";
import { commandConnection, ensureConnected, quit } from "./connection.ts";
import { EVENT_EXCHANGE, escapeGlob, kombuKeys, parseRedisUrl } from "./keys.ts";
import { redisHealth } from "./health.ts";
import { pidbox } from "./pidbox.ts";
import { redisActions } from "./actions.ts";
import { kombuQueues } from "./queues.ts";
import { redisResultBackend } from "./result-backend.ts";
import { redisStreams } from "./subscription.ts";

export interface RedisBrokerOptions {
  brokerUrl: string;
  resultBackendUrl?: string;
  /** kombu's `global_keyprefix`: prefixes every key and PUB/SUB channel. */
  globalKeyprefix?: string;
  log: Logger;
  /** Told of every connection error and reconnect (src/processes.ts makes one per process). */
  reachability?: BrokerReachability;
}

export function createRedisBroker(opts: RedisBrokerOptions): BrokerPort {
  const { log } = opts;
  const broker = parseRedisUrl(opts.brokerUrl);
  const keys = kombuKeys(opts.globalKeyprefix ?? "", broker.db);
  const commands = commandConnection(broker.url, "crisper", "broker", log, opts.reachability);
  const streams = redisStreams({
    brokerUrl: broker.url,
    // Every event type's channel: `…/celeryev/<routing key>`.
    eventChannels: `${escapeGlob(keys.fanout(EVENT_EXCHANGE))}/*`,
    resultBackendUrl: opts.resultBackendUrl,
    log,
    reachability: opts.reachability,
  });
  const results = redisResultBackend(opts.resultBackendUrl, log);

  return {
    // Any client can read the `unacked` hash; a dead worker's entries stay
    // there until some worker restores them after the visibility timeout.
    capabilities: { listsUnacked: true, countsUnacked: true, strandsPrefetched: true },
    subscribe: streams.subscribe,
    ...kombuQueues(commands, keys),
    ...pidbox(commands, keys),
    getResult: results.getResult,
    health: redisHealth(commands, log),
    ...redisActions(commands, keys),

    async ping() {
      await ensureConnected(commands);
      await commands.ping();
    },

    async close() {
      await Promise.all([streams.close(), quit(commands), results.close()]);
    },
  };
}
