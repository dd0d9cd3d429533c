import { text, timestamp } from "drizzle-orm/pg-core";

/**
 * A point in time: timestamptz, read back as a Date. The rest of Crisper
 * counts in unix seconds: the collector writes them through to_timestamp
 * (store/upsert.ts) and readers convert back with `unixSeconds`.
 */
/**
 * Which watched broker a record came from: a name from BROKERS, or "default"
 * (BROKER_URL alone). A short text, so it costs a task row a few bytes.
 */
export const brokerColumn = () => text("broker").notNull().default(DEFAULT_BROKER);

/** The name of the broker BROKER_URL alone names. */
export const DEFAULT_BROKER = "default";

export const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** A stored time as unix seconds (null stays null). */
export function unixSeconds(d: Date | null): number | null {
  return d ? d.getTime() / 1000 : null;
}
