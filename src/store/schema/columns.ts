import { timestamp } from "drizzle-orm/pg-core";

/**
 * A point in time: timestamptz, read back as a Date. The rest of Crisper
 * counts in unix seconds: the collector writes them through to_timestamp
 * (store/upsert.ts) and readers convert back with `unixSeconds`.
 */
export const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** A stored time as unix seconds (null stays null). */
export function unixSeconds(d: Date | null): number | null {
  return d ? d.getTime() / 1000 : null;
}
