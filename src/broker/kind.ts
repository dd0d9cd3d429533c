/**
 * Which broker a URL names, by its scheme (Celery's spellings: kombu's
 * transport aliases). Kept apart from create.ts so that what only needs the
 * answer (detection's settings) does not load the adapters.
 */
export type BrokerKind = "redis" | "rabbitmq";

/** URL scheme (as `URL#protocol` spells it) → broker. */
export const BROKER_SCHEMES: ReadonlyMap<string, BrokerKind> = new Map([
  ["redis:", "redis"],
  ["rediss:", "redis"],
  ["amqp:", "rabbitmq"],
  ["amqps:", "rabbitmq"],
  ["pyamqp:", "rabbitmq"],
]);

/** The URL's scheme, lower-cased (`amqp:`), if it has one. */
export function urlScheme(url: string): string | undefined {
  return /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0].toLowerCase();
}

/** Which broker a URL names, or null for a scheme Crisper does not read. */
export function brokerKind(url: string): BrokerKind | null {
  const scheme = urlScheme(url);
  return (scheme !== undefined && BROKER_SCHEMES.get(scheme)) || null;
}
