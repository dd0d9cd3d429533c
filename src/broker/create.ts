/**
 * Opens the broker a URL names, by its scheme: the one place that knows
 * which adapter serves which broker.
 */
import { type AmqpBrokerOptions, createAmqpBroker } from "./amqp/adapter.ts";
import type { BrokerPort } from "./port.ts";
import { createRedisBroker, type RedisBrokerOptions } from "./redis/adapter.ts";

/** Everything an adapter may need; each reads its own part. */
export type BrokerOptions = RedisBrokerOptions & AmqpBrokerOptions;

export type BrokerKind = "redis" | "rabbitmq";

/** URL scheme (as `URL#protocol` spells it) → broker. Celery's spellings: kombu's transport aliases. */
const SCHEMES = new Map<string, BrokerKind>([
  ["redis:", "redis"],
  ["rediss:", "redis"],
  ["amqp:", "rabbitmq"],
  ["amqps:", "rabbitmq"],
  ["pyamqp:", "rabbitmq"],
]);

const ADAPTERS: Record<BrokerKind, (opts: BrokerOptions) => BrokerPort> = {
  redis: createRedisBroker,
  rabbitmq: createAmqpBroker,
};

/** Which broker a URL names, or null for a scheme Crisper does not read. */
export function brokerKind(url: string): BrokerKind | null {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0].toLowerCase();
  return (scheme !== undefined && SCHEMES.get(scheme)) || null;
}

export function createBroker(opts: BrokerOptions): BrokerPort {
  const kind = brokerKind(opts.brokerUrl);
  if (!kind) {
    // Only the scheme goes into the error: the rest of the URL may hold a password.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(opts.brokerUrl)?.[0].toLowerCase();
    const expected = [...SCHEMES.keys()].map((s) => `${s}//`).join(", ");
    throw new Error(`BROKER_URL: expected one of ${expected}; got ${scheme ? `${scheme}//…` : "no scheme"}`);
  }
  return ADAPTERS[kind](opts);
}
