/**
 * Opens the broker a URL names, by its scheme: the one place that knows
 * which adapter serves which broker. A second broker adds its schemes here.
 */
import type { BrokerPort } from "./port.ts";
import { createRedisBroker, type RedisBrokerOptions } from "./redis/adapter.ts";

/** Everything an adapter may need; each reads its own part. */
export type BrokerOptions = RedisBrokerOptions;

/** URL scheme (as `URL#protocol` spells it) → adapter. */
const ADAPTERS = new Map<string, (opts: BrokerOptions) => BrokerPort>([
  ["redis:", createRedisBroker],
  ["rediss:", createRedisBroker],
]);

export function createBroker(opts: BrokerOptions): BrokerPort {
  // Only the scheme goes into the error: the rest of the URL may hold a password.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(opts.brokerUrl)?.[0].toLowerCase();
  const create = scheme === undefined ? undefined : ADAPTERS.get(scheme);
  if (!create) {
    const expected = [...ADAPTERS.keys()].map((s) => `${s}//`).join(" or ");
    throw new Error(`BROKER_URL: expected ${expected}, got ${scheme ? `${scheme}//…` : "no scheme"} (Crisper reads Celery's Redis broker; RabbitMQ is not supported yet, see README)`);
  }
  return create(opts);
}
