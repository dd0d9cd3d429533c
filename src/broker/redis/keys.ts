/**
 * Where kombu's Redis transport (kombu/transport/redis.py) keeps Celery's
 * things: the db number a URL selects, the names of Celery's own exchanges,
 * the PUB/SUB channel of a fanout exchange, the `_kombu.binding.<exchange>`
 * sets, and the lists of a queue's priority steps. Wire facts: celery-wire.md,
 * "Events" and "Queues in Redis".
 */

/** A Redis URL and the db number it selects. */
export interface RedisTarget {
  url: string;
  db: number;
}

export function parseRedisUrl(url: string): RedisTarget {
  const u = new URL(url);
  const path = u.pathname.replace(/^\//, "");
  const db = path === "" ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0) throw new Error(`bad Redis database number in ${u.protocol}//${u.host}/${path}`);
  return { url, db };
}

import { CONTROL_EXCHANGE, EVENT_EXCHANGE, isPlumbingExchange, isPlumbingQueue, REPLY_EXCHANGE } from "../../celery/control.ts";

export { CONTROL_EXCHANGE, EVENT_EXCHANGE, isPlumbingExchange, isPlumbingQueue, REPLY_EXCHANGE };

/** kombu's separator inside binding members and priority sub-queue names. */
export const SEP = "\x06\x16";

/** kombu's default `priority_steps`: sub-queues for 3, 6, 9; the plain name is 0. */
export const PRIORITY_STEPS = [0, 3, 6, 9] as const;

export function priorityQueueKey(queue: string, step: number): string {
  return step === 0 ? queue : `${queue}${SEP}${step}`;
}

/** Every exchange's binding set is named this, then the exchange. */
export const BINDINGS = "_kombu.binding.";

/** The names kombu gives one broker's keys and channels. */
export interface KombuKeys {
  /** A key: kombu's `global_keyprefix`, then the name. */
  key(name: string): string;
  /**
   * A fanout exchange's PUB/SUB channel, `{prefix}/{db}.{exchange}` (kombu's
   * `fanout_prefix`: PUB/SUB ignores databases, so the db is in the name).
   * Messages with a routing key go to `…/{routing_key}` below it
   * (`fanout_patterns`).
   */
  fanout(exchange: string): string;
  /** The set of an exchange's bindings, `_kombu.binding.<exchange>`. */
  bindings(exchange: string): string;
}

export function kombuKeys(globalKeyprefix: string, db: number): KombuKeys {
  const key = (name: string) => globalKeyprefix + name;
  return {
    key,
    fanout: (exchange) => `${globalKeyprefix}/${db}.${exchange}`,
    bindings: (exchange) => key(BINDINGS + exchange),
  };
}

/** A `_kombu.binding.<exchange>` member: `routing_key SEP pattern SEP queue`. */
export function parseBinding(member: string): { routingKey: string; pattern: string; queue: string } | null {
  const parts = member.split(SEP);
  if (parts.length !== 3) return null;
  const [routingKey = "", pattern = "", queue = ""] = parts;
  return queue ? { routingKey, pattern, queue } : null;
}

/** A Redis glob pattern that matches `s` literally. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
