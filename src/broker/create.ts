/**
 * Opens the broker a URL names, by its scheme: the one place that knows
 * which adapter serves which broker.
 */
import { type AmqpBrokerOptions, createAmqpBroker } from "./amqp/adapter.ts";
import { BROKER_SCHEMES, type BrokerKind, brokerKind, urlScheme } from "./kind.ts";
import type { BrokerPort } from "./port.ts";
import { createRedisBroker, type RedisBrokerOptions } from "./redis/adapter.ts";

export { brokerKind } from "./kind.ts";

/** Everything an adapter may need; each reads its own part. */
export type BrokerOptions = RedisBrokerOptions & AmqpBrokerOptions;

const ADAPTERS: Record<BrokerKind, (opts: BrokerOptions) => BrokerPort> = {
  redis: createRedisBroker,
  rabbitmq: createAmqpBroker,
};

export function createBroker(opts: BrokerOptions): BrokerPort {
  const kind = brokerKind(opts.brokerUrl);
  if (!kind) {
    // Only the scheme goes into the error: the rest of the URL may hold a password.
    const scheme = urlScheme(opts.brokerUrl);
    const expected = [...BROKER_SCHEMES.keys()].map((s) => `${s}//`).join(", ");
    throw new Error(`BROKER_URL: expected one of ${expected}; got ${scheme ? `${scheme}//…` : "no scheme"}`);
  }
  return ADAPTERS[kind](opts);
}
