/**
 * What kombu derives from a Redis URL: the db number (which PUB/SUB channel
 * names carry, since PUB/SUB itself ignores databases) and the key prefix.
 */
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

/** kombu's separator inside binding members and priority sub-queue names. */
export const SEP = "\x06\x16";

/** kombu's default `priority_steps`: sub-queues for 3, 6, 9; the plain name is 0. */
export const PRIORITY_STEPS = [0, 3, 6, 9] as const;

export function priorityQueueKey(queue: string, step: number): string {
  return step === 0 ? queue : `${queue}${SEP}${step}`;
}

/** Exchanges whose bindings are Celery's own plumbing, not task queues. */
const PLUMBING_EXCHANGES = new Set(["celeryev", "celery.pidbox", "reply.celery.pidbox"]);

export function isPlumbingExchange(exchange: string): boolean {
  return PLUMBING_EXCHANGES.has(exchange);
}

export function isPlumbingQueue(queue: string): boolean {
  return queue.startsWith("celeryev.") || queue.endsWith(".celery.pidbox") || queue.endsWith(".reply.celery.pidbox");
}

/** A `_kombu.binding.<exchange>` member: `routing_key SEP pattern SEP queue`. */
export function parseBinding(member: string): { routingKey: string; pattern: string; queue: string } | null {
  const parts = member.split(SEP);
  if (parts.length !== 3) return null;
  const [routingKey = "", pattern = "", queue = ""] = parts;
  return queue ? { routingKey, pattern, queue } : null;
}
